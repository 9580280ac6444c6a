"""`python -m vae.compare`: the tool lives in vae/tools/compare.py."""

from vae.tools.compare import main

if __name__ == "__main__":
    main()
