"""`python -m vae.report`: the tool lives in vae/tools/report.py."""

from vae.tools.report import main

if __name__ == "__main__":
    main()
