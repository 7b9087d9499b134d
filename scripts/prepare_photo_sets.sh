#!/usr/bin/env bash
# Prepare the public photo sets of docs/colour_quality.md ("Everyday photos at scale") as TFRecord shards.
#
#   bash scripts/prepare_photo_sets.sh CLONES OUT [EXCLUDE]
#
# CLONES holds clones of the six public repositories below, each in a folder named owner+name
# (git clone https://github.com/rangeetpan/IMagenet CLONES/rangeetpan+IMagenet, and so on); OUT gets one shard
# folder per set (train.py --data OUT/faces, or --more-data OUT/faces:0.12). EXCLUDE lists files that are the
# same photos as an evaluation set ("<owner>/<name> <path>" lines, '#' comments): they are left out.
# The photos are the sets' own: research and non-commercial terms for most (weights/MODEL_CARD.md).
# Nothing here is committed; it takes about 10 minutes on 2 cores.
set -euo pipefail
clones=${1:?usage: prepare_photo_sets.sh CLONES OUT [EXCLUDE]}
out=${2:?usage: prepare_photo_sets.sh CLONES OUT [EXCLUDE]}
exclude=${3:-}
python=${PYTHON:-python}
work="$out/folders"
mkdir -p "$work"

# name  repository  folder inside it (a train/ + val/ folder, or class subfolders, or flat)
sets=(
  "tinyimagenet rangeetpan+IMagenet tiny-imagenet-200"
  "imagenette thunderInfy+imagenette ."
  "faces mattans+AgeProgression data/UTKFace/unlabeled"
  "catsdogs chanakya2734+Image-classification-using-CNN dataset"
  "flowers martinwestin+flower_classification flowers"
  "sun nhantd+CMU16720-Scene-Classification data/images"
)
for line in "${sets[@]}"; do
  read -r name repo folder <<<"$line"
  src="$clones/$repo/$folder"
  [ -d "$src" ] || { echo "missing $src: clone github.com/${repo/+//} there" >&2; exit 1; }
  dest="$work/$name"
  rm -rf "$dest" && mkdir -p "$dest"
  # Image files only; Tiny ImageNet's test/ has no labels and is left out like its other non-image files.
  (cd "$src" && find . -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) -not -path './test/*' \
     -print0 | tar --null -T - -cf - | tar -x -C "$dest")
  if [ -n "$exclude" ]; then
    owner_repo=${repo/+//}
    grep -v '^#' "$exclude" | while read -r r path; do
      [ "$r" = "$owner_repo" ] || continue
      rel=${path#"$folder"/}
      [ "$folder" = "." ] && rel=$path
      rm -f "$dest/$rel" && echo "left out $r $path"
    done
  fi
  # Photos larger than the training sizes used here are stored at 256 px on the longer side.
  "$python" -m colorgan.data.prepare --data "$dest" --out "$out/$name" --max-side 256 --no-progress
done
