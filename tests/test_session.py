import pytest

import engine
from engine.errors import InputError


def test_session_is_importable_from_engine():
    from engine import TryOnSession

    assert TryOnSession is engine.TryOnSession
    assert "not implemented yet" in TryOnSession.__doc__


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"model": ""}, "model"),
        ({"backend": "cuda"}, "backend"),
        ({"precision": "int8"}, "precision"),
        ({"window": 0}, "window"),
        ({"window": True}, "window"),
        ({"mode": "fast"}, "mode"),
    ],
)
def test_bad_arguments_are_named(kwargs, argument):
    with pytest.raises(InputError) as info:
        engine.TryOnSession(**kwargs)
    assert info.value.argument == argument
    assert str(info.value).startswith(f"{argument}: expected")


def test_valid_arguments_say_not_implemented_yet():
    with pytest.raises(NotImplementedError, match="not implemented yet"):
        engine.TryOnSession("demo", backend="auto", window=4)


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        engine.NoSuchThing  # noqa: B018
