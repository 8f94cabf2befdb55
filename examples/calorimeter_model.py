"""A small analytic model of a 40-layer lead/scintillator sampling calorimeter, for the examples.

Textbook physics, no simulation. For an electron of energy E:

* sampling fluctuations (Amaldi): 2.7% * sqrt(d / f_samp) / sqrt(E), d the scintillator
  thickness in mm, f_samp the MIP sampling fraction;
* photostatistics: 1 / sqrt(N_pe), the photo-electrons from the energy deposited in the
  scintillator, with thin tiles collecting less light;
* longitudinal leakage: grows fast once the stack is too thin in radiation lengths;
* a 1% constant term for calibration.

Thin absorbers sample well but leak; thick scintillator gives light but dilutes sampling: the
optimum sits inside the box, not on a corner. The stack's depth (mm) is the price.
"""

from __future__ import annotations

import math

LAYERS = 40
X0_LEAD_MM, X0_SCINT_MM = 5.6, 424.0
DEDX_LEAD, DEDX_SCINT = 12.7, 2.0  # MeV/cm for a minimum-ionising particle
PE_PER_MEV = 2.0
CONSTANT_TERM = 0.01


def sampling_fraction(absorber_mm: float, scintillator_mm: float) -> float:
    return scintillator_mm * DEDX_SCINT / (scintillator_mm * DEDX_SCINT + absorber_mm * DEDX_LEAD)


def depth_in_x0(absorber_mm: float, scintillator_mm: float) -> float:
    return LAYERS * (absorber_mm / X0_LEAD_MM + scintillator_mm / X0_SCINT_MM)


def stack_depth_mm(absorber_mm: float, scintillator_mm: float) -> float:
    return LAYERS * (absorber_mm + scintillator_mm)


def energy_resolution(absorber_mm: float, scintillator_mm: float, energy_gev: float = 10.0) -> float:
    """Relative energy resolution sigma_E / E."""
    f_samp = sampling_fraction(absorber_mm, scintillator_mm)
    sampling = 0.027 * math.sqrt(scintillator_mm / f_samp) / math.sqrt(energy_gev)
    photo_electrons = energy_gev * 1000.0 * f_samp * PE_PER_MEV * (1.0 - math.exp(-scintillator_mm / 2.0))
    photostatistics = 1.0 / math.sqrt(photo_electrons)
    shower_max = math.log(energy_gev * 1000.0 / 7.4) - 0.5  # in X0, for electrons
    leakage = 0.5 * math.exp(-(depth_in_x0(absorber_mm, scintillator_mm) - shower_max) / 3.5)
    return math.sqrt(sampling**2 + photostatistics**2 + leakage**2 + CONSTANT_TERM**2)


def evaluate(absorber_mm: float, scintillator_mm: float) -> dict[str, float]:
    """Both objectives of the enhanced example: resolution and the stack's depth."""
    return {
        "resolution": energy_resolution(absorber_mm, scintillator_mm),
        "depth_mm": stack_depth_mm(absorber_mm, scintillator_mm),
    }
