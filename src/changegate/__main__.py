"""`python -m changegate`: the same as the `changegate` console script."""

from changegate.cli.main import main

if __name__ == "__main__":
    main()
