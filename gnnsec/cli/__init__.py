"""Click commands only: parse options, call the library, render with rich. No logic of their own."""
