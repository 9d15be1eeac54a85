"""The external todo API (JSONPlaceholder's shape: /todos and /users)."""

from urllib.parse import urljoin

import requests
from django.conf import settings

from notifications.http import session

PUBLIC_TODOS_API = "https://jsonplaceholder.typicode.com/"


class TodoApiError(Exception):
    """The todo API could not be reached or answered something that is not todos."""


def base_url():
    return settings.TODOS_API_URL


def _get(resource):
    url = urljoin(base_url(), resource)
    try:
        response = session.get(url, timeout=settings.TODOS_TIMEOUT_SECONDS)
    except requests.Timeout as error:
        raise TodoApiError(f"the todo API timed out ({url})") from error
    except requests.RequestException as error:
        raise TodoApiError(f"cannot reach the todo API ({url}): {error}") from error
    return response if response.ok else None


def get_todos():
    """The response for /todos, or None if the API answered with an error status."""
    return _get("todos")


def get_users():
    return _get("users")


def uncompleted(response):
    if response is None:
        return []
    try:
        todos = response.json()
    except ValueError as error:
        raise TodoApiError("the todo API answered with something that is not JSON") from error
    if not isinstance(todos, list) or not all(isinstance(t, dict) for t in todos):
        raise TodoApiError("the todo API answered with something that is not a list of todos")
    return [todo for todo in todos if todo.get("completed") is False]


def get_uncompleted_todos():
    return uncompleted(get_todos())
