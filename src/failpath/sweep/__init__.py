"""The sweep: fail every (test, point, nth hit) once and classify what the code did."""
