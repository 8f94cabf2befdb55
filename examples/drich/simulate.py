"""Toy dRICH simulation of one particle and momentum: Cherenkov angles of N events.

    python simulate.py PARTICLE MOMENTUM_GEV EVENTS

The geometry comes from the trial's compact file (the geometry stage's output in $AID2E_JOB_FILE).
Photon yield grows with the aerogel thickness and so does its scattering; a mirror out of focus
blurs every photon. Writes the events' mean angle and its spread (mrad) as this job's output.
"""

import json
import math
import os
import random
import sys
import xml.etree.ElementTree as ET

MASS = {"pi+": 0.13957, "kaon+": 0.49368}
INDEX = 1.019  # aerogel refractive index

particle, momentum, events = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
job = json.load(open(os.environ["AID2E_JOB_FILE"]))
root = ET.parse(job["inputs"]["geometry"][0]["result"]["compact"]).getroot()
thickness = float(root.find(".//constant[@name='DRICH_aerogel_thickness']").get("value").split("*")[0])
focus = float(root.find(".//detector/mirror").get("focus_tune_x").split("*")[0])

beta = momentum / math.hypot(momentum, MASS[particle])
theta = math.acos(1 / (INDEX * beta)) * 1000  # mrad
photons = 11.0 * thickness
single = math.sqrt(2.5**2 + (1.1 * thickness) ** 2 + (0.9 * (focus - 1.2)) ** 2)  # mrad per photon
rng = random.Random(f"{job['trial']}/{particle}/{momentum}")  # reproducible per trial and job
angles = []
for _ in range(events):
    n = max(1, round(rng.gauss(photons, math.sqrt(photons))))
    angles.append(theta + rng.gauss(0.0, single / math.sqrt(n)))
mean = sum(angles) / events
spread = math.sqrt(sum((a - mean) ** 2 for a in angles) / (events - 1))
json.dump({"theta": mean, "sigma": spread, "events": events}, open(os.environ["AID2E_RESULT_FILE"], "w"))
