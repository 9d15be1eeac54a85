"""A fake of JSONPlaceholder's todo API (/todos, /users), read-only, with seeded data.

`FakeTodoApi` keeps the `handle(method, path, query, body, headers)` contract
(fakes.contract): mount it under a base URL such as FAKE_TODOS_URL on a requests session
(fakes.transport.mounted) or serve it (fakes.server.FakeServer).
"""

import re
from urllib.parse import parse_qs

from fakes.contract import FakeResponse, FaultPlan, TransportFault

FAKE_TODOS_URL = "https://todos.fake.invalid/"


def seed_users():
    names = ["Leanne Graham", "Ervin Howell", "Clementine Bauch", "Patricia Lebsack",
             "Chelsey Dietrich", "Dennis Schulist", "Kurtis Weissnat", "Nicholas Runolfsdottir",
             "Glenna Reichert", "Clementina DuBuque"]  # fmt: skip
    users = []
    for index, name in enumerate(names, start=1):
        username = name.split()[0].lower()
        users.append(
            {
                "id": index,
                "name": name,
                "username": username,
                "email": f"{username}@example.com",
                "address": {"street": "Kulas Light", "suite": f"Apt. {index}", "city": "Gwenborough",
                            "zipcode": "92998-3874", "geo": {"lat": "-37.3159", "lng": "81.1496"}},
                "phone": f"1-770-736-80{index:02d}",
                "website": f"{username}.example.org",
                "company": {"name": f"Company {index}", "catchPhrase": "Multi-layered client-server",
                            "bs": "harness real-time e-markets"},
            }
        )  # fmt: skip
    return users


def seed_todos():
    """200 todos, 20 per user, in JSONPlaceholder's shape; roughly half completed."""
    return [
        {"userId": (i - 1) // 20 + 1, "id": i, "title": f"todo number {i}", "completed": i % 3 == 0}
        for i in range(1, 201)
    ]


class FakeTodoApi:
    """JSONPlaceholder's /todos and /users, read-only, with seeded data."""

    def __init__(self):
        self.faults = FaultPlan()
        self.reset()

    def reset(self):
        self.todos = seed_todos()
        self.users = seed_users()
        self.faults.clear()

    def handle(self, method, path, query, body, headers):
        match = re.fullmatch(r"/(todos|users)(?:/(\d+))?/?", path)
        if not match:
            return FakeResponse.json(404, {})
        if method.upper() != "GET":
            return FakeResponse.json(405, {"error": f"{method} not allowed"}, {"Allow": "GET"})
        fault = self.faults.before_request(method, path)
        if fault == "lost_response":
            raise TransportFault(fault)
        if fault:
            return FakeResponse.json(500 if fault == "api_error" else 429, {})
        items = self.todos if match.group(1) == "todos" else self.users
        if match.group(2):
            found = [item for item in items if item["id"] == int(match.group(2))]
            return FakeResponse.json(200, found[0]) if found else FakeResponse.json(404, {})
        filters = {k: v[0] for k, v in parse_qs(query).items()}
        if "userId" in filters and match.group(1) == "todos":
            items = [t for t in items if str(t["userId"]) == filters["userId"]]
        return FakeResponse.json(200, items, {"Content-Type": "application/json; charset=utf-8"})
