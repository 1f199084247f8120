"""Pages that combine the apps: the home map and the term page (lessons coloured by quiz
mastery), the term API, loading the content (terms and their questions), the health check and
the error pages.

This is the only app that may import all the others; ``lessons`` and ``engine`` import none of
ours, and ``quiz`` imports only those two (see ``.importlinter``).
"""
