from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing with 400 what would otherwise be a 500.

    A body nested deeper than Python's recursion limit (`[[[[…]]]]`, well within the
    size limit) makes the decoder raise RecursionError, which DRF does not catch.
    The size itself is bounded before parsing: DRF reads `request.body`, which
    Django refuses past DATA_UPLOAD_MAX_MEMORY_SIZE (`API_MAX_BODY_BYTES`), and
    `backend.errors` answers that with 413.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
