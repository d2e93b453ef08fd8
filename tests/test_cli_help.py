"""Every command-line argument of every learnact command has a help text, and every
command's --help formats."""

import argparse

from learnact.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, path: str):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_argument_has_help() -> None:
    missing = []
    count = 0
    for path, parser in _parsers(build_parser(), "learnact"):
        parser.format_help()  # a bad %-placeholder in any help text raises here
        for action in parser._actions:
            if isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)):
                continue
            count += 1
            if not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert count > 100 and missing == []
