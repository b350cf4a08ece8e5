"""`python -m tfmm ...` runs the `tfmm` command line (Colab cells, environments without the script on PATH)."""

from tfmm.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
