"""``python -m sentinel`` is the ``sentinel`` command."""

# Everything under the guard: decode worker processes start by importing this module, and must neither
# run the CLI again nor pay for importing it.
if __name__ == "__main__":
    import sys

    from sentinel.cli.main import main

    sys.exit(main())
