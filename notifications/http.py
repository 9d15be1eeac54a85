"""The one requests.Session our provider clients use.

A fake replaces a provider by mounting a transport adapter on this session
(see notifications.testing), so the real client code runs unchanged above it;
the `responses` library intercepts it too.
"""

import requests

session = requests.Session()
session.headers["User-Agent"] = "paybackend/1.0"
