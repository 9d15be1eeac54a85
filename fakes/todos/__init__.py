"""The fake todo API: `FakeTodoApi`, JSONPlaceholder's /todos and /users with seeded data."""

from fakes.todos.api import FAKE_TODOS_URL, FakeTodoApi, seed_todos, seed_users

__all__ = ["FAKE_TODOS_URL", "FakeTodoApi", "seed_todos", "seed_users"]
