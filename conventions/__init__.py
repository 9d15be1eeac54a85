"""The conventions every app of this backend shares, and nothing else: the error envelope
and its handlers (`errors`), hostile-input limits (`inputs`), strict serializer fields
(`fields`), pagination, throttles, the OpenAPI helpers (`schema`, `openapi`), the small
HTML pages for people outside /api/ (`pages`), and a deprecation helper.

It imports no app of this project and not `backend` (import-linter's layers contract in
pyproject.toml): the apps stand on it, `backend` stands on the apps.
"""
