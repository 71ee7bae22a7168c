from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=N&page_size=M`: 20 items a page by default, 100 at most."""

    page_size_query_param = "page_size"
    max_page_size = 100
    page_size_query_description = "Items per page, from 1; values above 100 give 100."
    last_page_strings = ()  # DRF's default takes `page=last`; a page is a number

    def get_page_size(self, request) -> int:
        """The requested page size, capped; 400 for a value that is not a positive integer."""
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        digits = value.lstrip("0")
        if not (value.isascii() and value.isdigit() and digits):
            raise ValidationError({self.page_size_query_param: ["Give a whole number from 1."]})
        # Compared by length first: int() refuses a string of thousands of digits.
        if len(digits) > len(str(self.max_page_size)):
            return self.max_page_size
        return min(int(digits), self.max_page_size)

    def get_page_number(self, request, paginator):
        """The page asked for, as a string the paginator validates (404 when invalid).

        Only ASCII digits make a number: Python's int() would also read "\\u0661" (an
        Arabic-Indic one) as 1. An empty value, which DRF reads as page 1, is as
        invalid as `page=abc`.
        """
        page = request.query_params.get(self.page_query_param)
        if page is not None and not (page.isascii() and page.isdigit()):
            return "invalid"
        return super().get_page_number(request, paginator)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters
