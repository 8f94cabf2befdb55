"""Built-in job kinds: ``function`` (a Python callable) and ``script`` (a program, argv only)."""
