"""srlib: the small library behind the super-resolution book.

One concern per module, each readable top to bottom:

* ``imresize``, ``color``: MATLAB's bicubic resize; BT.601 colour conversion;
* ``metrics``, ``degradations``: PSNR and SSIM under the papers' protocol; the LR images;
* ``data``, ``datasets``: images, the data root and the training-patch sampler; the standard
  sets and their download (a package: tables, fetch, archives, install, cli);
* ``models``: one file per paper, each declaring its own spec; ``inference`` (tiled
  forward, self-ensemble), ``tiles`` (large photographs upscaled tile by tile) and ``profile``
  (parameters, MACs, latency);
* ``device``, ``budget``, ``history``, ``checkpoint``, ``train``: where to run, how much to
  train, what a run records, saving and resuming, and the training loop ``fit``; with it
  ``interrupt`` (Ctrl-C between steps) and ``distributed`` (several processes, launched by
  torchrun); ``reference``: the trained models the labs load; ``authors`` and ``convert``: the
  papers' own released networks, by name, converted into srlib's; ``files``: writes that are never
  seen half-done;
* ``evaluate``, ``protocols``, ``plots``, ``progress``, ``cli``: the protocol applied to a model,
  the papers' own evaluation scripts where they differ, figures
  for the book, progress bars, and ``python -m srlib {models,train,evaluate,upscale,download}``.
"""
