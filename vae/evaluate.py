"""`python -m vae.evaluate`: the tool lives in vae/tools/evaluate.py."""

from vae.tools.evaluate import main

if __name__ == "__main__":
    main()
