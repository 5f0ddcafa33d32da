"""Prints how much of a PNG is drawn, as JSON: its width and height, the fraction of pixels that
are not white, and how many distinct colours it has (a blank or failed render has one or two)."""
import json
import sys

from PIL import Image

image = Image.open(sys.argv[1]).convert("RGB")
width, height = image.size
colours = image.getcolors(maxcolors=width * height)
white = sum(count for count, colour in colours if colour == (255, 255, 255))
print(json.dumps({"width": width, "height": height,
                  "non_white": 1 - white / (width * height), "colours": len(colours)}))
