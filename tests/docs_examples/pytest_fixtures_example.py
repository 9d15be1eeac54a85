"""pytest-style tests on this project's fixtures (docs/testing-harness.md, "pytest fixtures").

Not collected by the suite itself (the name does not start with test_): both runners must
count the same tests, and `manage.py test` cannot run plain functions. test_pytest_style.py
runs this file under pytest in a subprocess and checks every test in it passed.
"""

import pytest
import stripe
from django.contrib.auth import get_user_model

from notifications.tasks import send_reminder


# --8<-- [start:project-fixtures]
@pytest.mark.django_db
def test_reminder_with_the_project_fixtures(todos_fake, push_fake, stripe_fake):
    user = get_user_model().objects.create_user("ada")
    todos_fake.todos = [{"userId": user.id, "id": 1, "title": "x", "completed": False}]

    send_reminder()

    assert push_fake.received_by(user.id) == ["You have 1 unfinished todo"]
    assert stripe_fake.charges == []


def test_fakes_is_the_accessor(fakes):
    stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
    assert [charge["amount"] for charge in fakes.stripe.charges] == [500]


# --8<-- [end:project-fixtures]
