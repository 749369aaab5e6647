"""Output files that wait for the database: staged beside their target, put in place after
the run is committed.

While a :func:`deferred` block is open (every command given ``--output`` runs in one:
:func:`pricelab.store.db.held_commits`; so does every :meth:`~pricelab.store.db.Store.transaction`),
a file written through :mod:`pricelab.io` goes to a temporary name beside its target,
``.NAME.pricelab-tmp`` in the same folder, and is renamed to NAME (:func:`os.replace`,
atomic within one folder) only when the block ends without error, after the COMMIT inside
it. When the block raises (the work, the file write or the COMMIT failed) the temporary file
is removed and an earlier file at the target is left as it was: a file at the target always
has its run recorded.

Object stores have no atomic rename. An object-store target (``s3://``, ``az://``,
``gs://``...) is uploaded to ``.NAME.pricelab-tmp`` beside it before the commit (a failed
upload rolls the run back), then copied to NAME on the server after it, and the temporary
object is deleted (also when the commit failed). If that copy fails after its retries the run
stays recorded, the temporary object is deleted and the error is raised (exit 75 or 2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field

from pricelab.errors import PricelabError

_AFTER = "the run is recorded but its file is not there: write it again"


@dataclass
class _Staged:
    """The files of one :func:`deferred` block, by target: (put in place, remove the staged
    copy); and what to say once they are in place."""

    files: dict[str, tuple[Callable[[], None], Callable[[], None]]] = field(default_factory=dict)
    notes: list[Callable[[], None]] = field(default_factory=list)


_STAGED: ContextVar[_Staged | None] = ContextVar("pricelab_staged_files", default=None)


def temp_name(name: str) -> str:
    """The name a file is staged under beside its target ``name``."""
    return f".{name}.pricelab-tmp"


def active() -> bool:
    """True inside a :func:`deferred` block (a file written now waits for it to end)."""
    return _STAGED.get() is not None


def later(target: str, publish: Callable[[], None], discard: Callable[[], None]) -> bool:
    """Put a staged file in place when the open :func:`deferred` block ends (``publish``,
    then ``discard``), or remove it when the block raises (``discard``). Returns False
    outside a block (nothing registered: the caller puts it in place now). A second file
    for the same ``target`` replaces the first (its staged copy has the same name)."""
    staged = _STAGED.get()
    if staged is None:
        return False
    staged.files[target] = (publish, discard)
    return True


def then(say: Callable[[], None]) -> None:
    """Call ``say`` (e.g. print "wrote N rows to FILE") once the files are in place: at the
    end of the open :func:`deferred` block, or now outside one."""
    staged = _STAGED.get()
    if staged is None:
        say()
    else:
        staged.notes.append(say)


@contextmanager
def deferred() -> Iterator[None]:
    """Files written inside are put in place when the block ends normally and removed when
    it raises; a block opened inside another joins it (the outer one decides)."""
    if _STAGED.get() is not None:
        yield
        return
    staged = _Staged()
    token = _STAGED.set(staged)
    try:
        yield
    except BaseException:
        _STAGED.reset(token)
        for _, discard in staged.files.values():
            _quietly(discard)
        raise
    _STAGED.reset(token)
    _publish(staged)


def _quietly(discard: Callable[[], None]) -> None:
    with suppress(Exception):  # the block's own error (or the publish's) is reported
        discard()


def _publish(staged: _Staged) -> None:
    """Every file in place, each staged copy removed, then the notes; the first failure is
    raised after every file was tried (and no note said)."""
    first: PricelabError | None = None
    for publish, discard in staged.files.values():
        try:
            publish()
        except PricelabError as exc:
            if first is None:
                first = type(exc)(exc.message, hint=_AFTER)
        finally:
            _quietly(discard)
    if first is not None:
        raise first
    for say in staged.notes:
        say()
