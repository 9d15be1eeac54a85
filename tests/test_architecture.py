"""The layout's rules that import-linter's contracts (pyproject.toml) do not state: no
module imports one that imports it back, through any chain of imports, at module level
or inside a function (grimp, import-linter's own graph, sees both)."""

import grimp
from django.test import SimpleTestCase

PACKAGES = ("backend", "accounts", "payments", "notifications", "conventions", "fakes", "tests")


class ImportGraphTests(SimpleTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.graph = grimp.build_graph(*PACKAGES, include_external_packages=False)

    def test_no_circle_of_modules(self):
        graph = self.graph
        circles = sorted(
            {
                tuple(sorted((module, imported)))
                for module in graph.modules
                for imported in graph.find_modules_directly_imported_by(module)
                if graph.chain_exists(importer=imported, imported=module)
            }
        )
        self.assertEqual(circles, [], "modules that import each other (through any chain)")

    def test_no_app_imports_the_project_tests(self):
        for app in ("accounts", "payments", "notifications", "conventions", "fakes"):
            with self.subTest(app=app):
                self.assertFalse(
                    self.graph.direct_import_exists(
                        importer=app, imported="tests", as_packages=True
                    )
                )
