"""Pagination every list uses: pages from 1, sizes 1-100, anything else a clear 400."""

from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination

from conventions.inputs import ascii_digits


class Pagination(PageNumberPagination):
    """Page numbers from 1 and page sizes 1-100; anything else is a 400, a page past the end 404."""

    page_size_query_param = "page_size"
    max_page_size = 100

    max_page = 2**31 - 1

    def _query_integer(self, request, name, maximum):
        raw = request.query_params.get(name)
        if raw is None:
            return None
        digits = raw.lstrip("0")
        if not ascii_digits(raw) or not digits:
            raise exceptions.ValidationError(
                {name: [exceptions.ErrorDetail("Enter a whole number from 1.", "invalid")]}
            )
        value = int(digits) if len(digits) <= 12 else maximum + 1  # never int() 5000 digits
        if value > maximum:
            raise exceptions.ValidationError(
                {name: [exceptions.ErrorDetail(f"The maximum is {maximum}.", "max_value")]}
            )
        return value

    def paginate_queryset(self, queryset, request, view=None):
        self._query_integer(request, self.page_query_param, self.max_page)
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        size = self._query_integer(request, self.page_size_query_param, self.max_page_size)
        return self.page_size if size is None else size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            parameter["schema"]["maximum"] = (
                self.max_page_size
                if parameter["name"] == self.page_size_query_param
                else self.max_page
            )
        return parameters
