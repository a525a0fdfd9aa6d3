"""Train the book's reference models and store their weights and provenance in srlib/weights.

    SRLIB_DATA=/path/to/data python scripts/train_reference.py srcnn-x3 fsrcnn-x3 --overwrite

The data root must hold T91 and BSD200 (``python -m srlib download T91 BSD200``) and, for the
recorded Set5 figures, Set5. Shipped weights are replaced only with ``--overwrite``;
``--remeasure`` rewrites the recorded figures only when every recorded set is in the data root.
Train one model at a time: two trainings sharing a small CPU each run several times slower.
The recipes are :data:`srlib.reference.RECIPES`.
"""
import argparse
import sys

from srlib.reference import RECIPES, remeasure, train_reference


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="train_reference.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=list(RECIPES), metavar="NAME",
                        help=f"reference models to train: {', '.join(RECIPES)}")
    parser.add_argument("--root", help="data root holding T91, BSD200 and Set5 (default: $SRLIB_DATA or ./data)")
    parser.add_argument("--out-dir", help="where the weights and provenance go (default: srlib/weights)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--seed", type=int, help="train with this seed instead of the recipe's (needs --out-dir): "
                                                 "how much does the result depend on the seed?")
    parser.add_argument("--remeasure", action="store_true",
                        help="do not train: measure the shipped weights again and rewrite their recorded figures")
    parser.add_argument("--overwrite", action="store_true", help="replace weights that exist in the output folder")
    args = parser.parse_args(argv)
    for name in args.names:
        try:
            if args.remeasure:
                info = remeasure(name, args.root)
                print(f"{name}: " + ", ".join(f"{k} {v['psnr']:.2f} dB" for k, v in info["measured"].items()))
                continue
            info = train_reference(name, args.root, out_dir=args.out_dir, progress=not args.no_progress,
                                   seed=args.seed, overwrite=args.overwrite)
        except (ValueError, OSError) as error:  # a bad name, data root or output: one line, nothing written
            print(f"train_reference.py: {' '.join(str(error).split())}", file=sys.stderr)
            return 2 if isinstance(error, (ValueError, FileNotFoundError, FileExistsError)) else 1
        set5 = info["measured"].get("Set5")
        where = f"Set5 {set5['psnr']:.2f} dB / {set5['ssim']:.4f}" if set5 else "Set5 not found"
        print(f"{name}: {info['seconds'] / 60:.1f} min; {where}; held-out photographs "
              f"{info['measured']['embedded']['psnr']:.2f} dB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
