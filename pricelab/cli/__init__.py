"""The ``pricelab`` command line: parse options, call one library function, print."""
