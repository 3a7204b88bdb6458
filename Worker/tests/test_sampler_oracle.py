"""Each offered scheduler and sampler, run through the worker's own family code, converges on the
oracle's target (see oracle.py); and the oracle does flag samplers that are wrong."""

import pytest
import torch

from sdgate_worker import families, seeds
from sdgate_worker.request import parse_generate_request
from sdgate_worker.sd3_samplers import SOLVERS

from conftest import request_json
import contract
from oracle import epsilon_prediction, flow_prediction, relative_error, replacing_denoiser

STEPS = 20
EXACT = 1e-2
# DDIM and PNDM end on the last training noise level (alpha_bar = 0.99915 with set_alpha_to_one off, as
# the real SD configs ship), a few percent from the target by design.
ENDS_AT_TRAINING_NOISE = {"ddim", "pndm"}
RESIDUAL = 0.06


def target_latents(channels: int) -> torch.Tensor:
    return torch.randn((1, channels, 8, 8), generator=torch.Generator().manual_seed(7))


def final_latents(engine, model, family_fn, weights, **fields):
    request = parse_generate_request(request_json(model, steps=STEPS, **fields))
    loaded = engine.store.acquire(weights)
    image = None
    if request.image_base64:
        from sdgate_worker.images import decode_input_image
        image = decode_input_image(request.image_base64, request.width, request.height)
    seeds.seed_global(request.seed)
    run = families.Run(request=request, image=image, generators=seeds.sample_generators(request.seed, 1),
                       output_type="latent")
    with torch.inference_mode():
        return family_fn(*loaded, run), loaded


def epsilon_case(engine, model, family_fn, weights, scheduler, **fields):
    loaded = engine.store.acquire(weights)
    target = target_latents(4)
    predict = epsilon_prediction(loaded[0].original_scheduler_config, target)
    denoisers = [w.pipeline.unet for w in loaded]
    with replacing_denoiser(denoisers, predict):
        latents, _ = final_latents(engine, model, family_fn, weights, scheduler=scheduler, **fields)
    return relative_error(latents, target)


def tolerance(scheduler: str) -> float:
    return RESIDUAL if scheduler.lower() in ENDS_AT_TRAINING_NOISE else EXACT


@pytest.mark.parametrize("scheduler", contract.values("sd1.5-img2img", "scheduler"))
def test_sd15_img2img_schedulers_converge(engine, scheduler):
    error = epsilon_case(engine, "sd1.5-img2img", families.sd15_img2img, ["sd15"], scheduler, strength=1.0)
    assert error < tolerance(scheduler), error


@pytest.mark.parametrize("scheduler", contract.values("sdxl-img2img", "scheduler"))
def test_sdxl_img2img_schedulers_converge(engine, scheduler):
    error = epsilon_case(engine, "sdxl-img2img", families.sdxl_img2img, ["sdxl-base"], scheduler,
                         strength=0.75)
    assert error < tolerance(scheduler), error


@pytest.mark.parametrize("scheduler", contract.values("sdxl1.0-txt2img", "scheduler"))
def test_sdxl_base_to_refiner_hand_off_converges(engine, scheduler):
    error = epsilon_case(engine, "sdxl1.0-txt2img", families.sdxl_txt2img, ["sdxl-base", "sdxl-refiner"],
                         scheduler, high_noise_fraction=0.8)
    assert error < tolerance(scheduler), error


def sd3_error(engine, sampler, schedule, strength, scheduler_override=None):
    target = target_latents(16)
    with replacing_denoiser([engine.store.acquire(["sd3-no-t5"])[0].pipeline.transformer],
                            flow_prediction(target)):
        if scheduler_override is None:
            latents, _ = final_latents(engine, "sd3-med-img2img", families.sd3_img2img, ["sd3-no-t5"],
                                       sampler=sampler, scheduler=schedule, strength=strength)
        else:
            latents = scheduler_override(engine, target)
    return relative_error(latents, target)


SD3_OFFERED = [(sampler, schedule) for sampler in contract.values("sd3-med-img2img", "sampler")
               if sampler in SOLVERS for schedule in SOLVERS[sampler].schedules]


@pytest.mark.parametrize("sampler, schedule", SD3_OFFERED)
@pytest.mark.parametrize("strength", [1.0, 0.75])
def test_sd3_samplers_converge(engine, sampler, schedule, strength):
    error = sd3_error(engine, sampler, schedule, strength)
    assert error < EXACT, error


def test_the_oracle_flags_an_epsilon_scheduler_on_sd3(engine):
    """What the worker refuses to do: run SD3 with an epsilon scheduler. It raises no error and gives
    an image, so only the oracle can tell."""
    from diffusers import EulerDiscreteScheduler, StableDiffusion3Pipeline

    def run_with_epsilon_euler(engine, target):
        pipe = StableDiffusion3Pipeline.from_pipe(engine.store.acquire(["sd3-no-t5"])[0].pipeline)
        pipe.scheduler = EulerDiscreteScheduler()
        with torch.inference_mode():
            return pipe(prompt="x", width=64, height=64, num_inference_steps=STEPS, output_type="latent",
                        generator=torch.Generator().manual_seed(0)).images

    # Written as "not below" so that a NaN result counts as the miss it is.
    assert not sd3_error(engine, None, None, 1.0, scheduler_override=run_with_epsilon_euler) < RESIDUAL


def test_the_oracle_flags_a_wrong_prediction_type(engine):
    """DPM++ 2M told the epsilon model predicts v: it runs, and lands off target."""
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionImg2ImgPipeline
    from sdgate_worker.images import decode_input_image

    loaded = engine.store.acquire(["sd15"])[0]
    target = target_latents(4)
    request = parse_generate_request(request_json("sd1.5-img2img"))
    pipe = StableDiffusionImg2ImgPipeline.from_pipe(loaded.pipeline)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(loaded.original_scheduler_config,
                                                             prediction_type="v_prediction")
    with replacing_denoiser([loaded.pipeline.unet],
                            epsilon_prediction(loaded.original_scheduler_config, target)), torch.inference_mode():
        latents = pipe(prompt="x", image=decode_input_image(request.image_base64, 64, 64), strength=1.0,
                       num_inference_steps=STEPS, output_type="latent",
                       generator=torch.Generator().manual_seed(0)).images
    # DPM Multi is held to EXACT above; the same solver with the wrong prediction type misses it.
    assert relative_error(latents, target) > EXACT
