"""The documentation's examples, as tests both runners run.

Each docs page includes its code from these files with pymdownx.snippets (the
`# --8<-- [start:name]` / `# --8<-- [end:name]` markers), so the docs show exactly the
code CI runs. Change an example here and the page changes with it.
"""
