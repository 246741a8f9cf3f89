"""The one way to freeze a module: no gradients, eval mode, and eval mode kept through later ``train()`` calls.

* :func:`freeze` freezes any module (a backbone, an upsampler, a neck's child).
* :class:`FreezableMixin` gives a module a ``frozen`` flag: a module built with ``frozen=True`` is frozen as soon
  as its outermost ``__init__`` returns (so an optimizer or a DDP wrapper never sees a trainable parameter),
  again after ``init_weights()``, and its ``train()`` keeps it (and its children) in eval mode.

``freeze`` on a :class:`FreezableMixin` also sets its flag, so a frozen child stays in eval mode when its parent
is switched to training: ``nn.Module.train`` recurses into the child's own ``train``. A plain module has no flag:
it is frozen now, and a later ``train()`` on it or a parent switches its mode back (its gradients stay off).

Example:
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    >>> freeze(net) is net, any(p.requires_grad for p in net.parameters()), net.training
    (True, False, False)
"""
from abc import ABCMeta

from torch import nn


def freeze(module: nn.Module) -> nn.Module:
    """No gradients for ``module``'s parameters, eval mode; sets the ``frozen`` flag of a :class:`FreezableMixin`
    (which then keeps eval mode through ``train()``). Returns ``module``."""
    if isinstance(module, FreezableMixin):
        module.frozen = True
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()
    return module


class _FreezeAfterInit(ABCMeta):
    """Metaclass of :class:`FreezableMixin`: freezes an instance built with ``frozen=True`` once the whole
    ``__init__`` chain has run (parameters registered by subclasses included)."""

    def __call__(cls, *args, **kwargs):
        module = super().__call__(*args, **kwargs)
        if module.frozen:
            freeze(module)
        return module


class FreezableMixin(metaclass=_FreezeAfterInit):
    """A ``frozen`` flag for an ``nn.Module`` / mmengine ``BaseModule`` (list it first among the bases).

    The module's ``__init__`` sets ``self.frozen`` (or the class sets ``frozen = True`` for a module that never
    trains, e.g. an evaluation-only model); the rest is done here: freezing after construction and after
    ``init_weights()``, and ``train(mode)`` acting as ``train(False)`` while frozen.
    """

    #: whether the module is frozen (set by the module's ``__init__``, or by :func:`freeze`)
    frozen: bool = False

    def init_weights(self) -> None:
        parent = getattr(super(), 'init_weights', None)  # mmengine BaseModule has one, a plain nn.Module not
        if parent is not None:
            parent()
        if self.frozen:
            freeze(self)

    def train(self, mode: bool = True):
        return super().train(mode and not self.frozen)
