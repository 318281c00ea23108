"""A project with one function per outcome class, swept by failpath's own tests."""
