"""`python -m vae.plots`: the tool lives in vae/tools/plots.py."""

from vae.tools.plots import main

if __name__ == "__main__":
    main()
