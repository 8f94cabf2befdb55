"""Toy overlap check of a dRICH geometry (the stage after the compact file is written).

Reads the trial's compact file (its path is the geometry stage's output, in $AID2E_JOB_FILE) and
exits 9 when the aerogel is thicker than the space in front of the filter allows, as ePIC's
checkOverlaps does for overlapping volumes; the campaign maps exit 9 to its penalty values.
"""

import json
import os
import sys
import xml.etree.ElementTree as ET

SPACE_CM = 5.0  # room for the aerogel in this toy

job = json.load(open(os.environ["AID2E_JOB_FILE"]))
compact = job["inputs"]["geometry"][0]["result"]["compact"]
root = ET.parse(compact).getroot()
thickness = float(root.find(".//constant[@name='DRICH_aerogel_thickness']").get("value").split("*")[0])
if thickness > SPACE_CM:
    print(f"overlap: aerogel {thickness:.3f} cm does not fit in {SPACE_CM} cm", file=sys.stderr)
    sys.exit(9)
print(f"no overlaps: aerogel {thickness:.3f} cm")
