"""A tiny CLI whose tests run it in a child interpreter, swept by failpath's own tests."""
