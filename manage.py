#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    # Management commands read the development values in .env (backend/settings.py).
    os.environ.setdefault("DJANGO_READ_DOT_ENV_FILE", "true")
    if sys.argv[1:2] == ["test"]:
        from backend.test_runner import prepare_the_starter

        prepare_the_starter()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
