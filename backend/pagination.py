from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=N&page_size=M`: 20 items a page by default, 100 at most."""

    page_size_query_param = "page_size"
    max_page_size = 100
    page_size_query_description = "Items per page, from 1; values above 100 give 100."

    def get_page_size(self, request) -> int:
        """The requested page size, capped; 400 for a value that is not a positive integer."""
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        if not (value.isascii() and value.isdigit() and int(value) > 0):
            raise ValidationError({self.page_size_query_param: ["Give a whole number from 1."]})
        return min(int(value), self.max_page_size)

    def get_page_number(self, request, paginator):
        if request.query_params.get(self.page_query_param) == "":
            return ""  # DRF would read it as page 1; it is as invalid as `page=abc` (404)
        return super().get_page_number(request, paginator)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters
