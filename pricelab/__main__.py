"""``python -m pricelab``."""

if __name__ == "__main__":
    import gc

    gc.disable()  # off while start-up imports load, as pricelab.cli.app.main explains

    from pricelab.cli.app import main

    main()
