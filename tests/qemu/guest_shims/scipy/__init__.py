# Guest-only shim (tests/qemu/vm.py puts this directory on PYTHONPATH): Numba imports
# scipy.linalg on its first compile/cache load just to learn whether BLAS exists
# (numba/np/arraymath.py _check_blas). That costs ~0.75 s on the host and ~13 s in
# the TCG guest, per process; tickwire never needs BLAS, and numba treats the
# ImportError as "no BLAS".
raise ImportError("scipy is hidden inside the tickwire QEMU test guest")
