"""Accelerated images: an eStargz twin of an image, for lazy pulling.

:mod:`.estargz` rewrites one layer; :mod:`.service` converts an image (every platform of an
index, each layer once) and pushes the twin under the original's tags plus a suffix.
"""
