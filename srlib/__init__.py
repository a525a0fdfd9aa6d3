"""srlib: the small library behind the super-resolution book.

Each concern has one home: MATLAB-compatible resizing (``srlib.imresize``), colour
conversion (``srlib.color``), metrics (``srlib.metrics``), data (``srlib.data``), training
(``srlib.train``) and the model zoo (``srlib.models``).
"""
