"""meta: pools the Dutch Experimenten Participatiewet (2017-2020) across municipalities.

Stages, one module each, data flowing one way:
``load`` (inputs/ → validated frames) → ``harmonise`` (yi, sei, se_method, arm
classes) → ``select`` (cells per plan) → ``engine`` (pooling) → ``tables``,
``plots``, ``report`` (outputs/). ``cli`` and ``pipeline`` sit on top.

Importing this package has no side effects on numpy's error state or Python's
warning filters (``forestplot`` is imported lazily inside ``plots``).
"""

__version__ = "0.1.0"
