"""SDXL style presets of the contract (Stability's SDXL style templates): a prompt template with
`{prompt}` and a negative prompt that is prepended to the client's own."""

from __future__ import annotations

from .errors import unsupported

STYLES = {
    "3d-model": ("professional 3d model {prompt} . octane render, highly detailed, volumetric, dramatic lighting",
                 "ugly, deformed, noisy, low poly, blurry, painting"),
    "analog-film": ("analog film photo {prompt} . faded film, desaturated, 35mm photo, grainy, vignette, vintage, "
                    "Kodachrome, Lomography, stained, highly detailed, found footage",
                    "painting, drawing, illustration, glitch, deformed, mutated, cross-eyed, ugly, disfigured"),
    "anime": ("anime artwork {prompt} . anime style, key visual, vibrant, studio anime,  highly detailed",
              "photo, deformed, black and white, realism, disfigured, low contrast"),
    "cinematic": ("cinematic film still {prompt} . shallow depth of field, vignette, highly detailed, high budget, "
                  "bokeh, cinemascope, moody, epic, gorgeous, film grain, grainy",
                  "anime, cartoon, graphic, text, painting, crayon, graphite, abstract, glitch, deformed, mutated, "
                  "ugly, disfigured"),
    "comic-book": ("comic {prompt} . graphic illustration, comic art, graphic novel art, vibrant, highly detailed",
                   "photograph, deformed, glitch, noisy, realistic, stock photo"),
    "digital-art": ("concept art {prompt} . digital artwork, illustrative, painterly, matte painting, highly detailed",
                    "photo, photorealistic, realism, ugly"),
    "enhance": ("breathtaking {prompt} . award-winning, professional, highly detailed",
                "ugly, deformed, noisy, blurry, distorted, grainy"),
    "fantasy-art": ("ethereal fantasy concept art of  {prompt} . magnificent, celestial, ethereal, painterly, epic, "
                    "majestic, magical, fantasy art, cover art, dreamy",
                    "photographic, realistic, realism, 35mm film, dslr, cropped, frame, text, deformed, glitch, noise, "
                    "noisy, off-center, deformed, cross-eyed, closed eyes, bad anatomy, ugly, disfigured, sloppy, "
                    "duplicate, mutated, black and white"),
    "isometric": ("isometric style {prompt} . vibrant, beautiful, crisp, detailed, ultra detailed, intricate",
                  "deformed, mutated, ugly, disfigured, blur, blurry, noise, noisy, realistic, photographic"),
    "line-art": ("line art drawing {prompt} . professional, sleek, modern, minimalist, graphic, line art, "
                 "vector graphics",
                 "anime, photorealistic, 35mm film, deformed, glitch, blurry, noisy, off-center, deformed, "
                 "cross-eyed, closed eyes, bad anatomy, ugly, disfigured, mutated, realism, realistic, "
                 "impressionism, expressionism, oil, acrylic"),
    "low-poly": ("low-poly style {prompt} . low-poly game art, polygon mesh, jagged, blocky, wireframe edges, "
                 "centered composition",
                 "noisy, sloppy, messy, grainy, highly detailed, ultra textured, photo"),
    "modeling-compound": ("play-doh style {prompt} . sculpture, clay art, centered composition, Claymation",
                          "sloppy, messy, grainy, highly detailed, ultra textured, photo"),
    "neon-punk": ("neonpunk style {prompt} . cyberpunk, vaporwave, neon, vibes, vibrant, stunningly beautiful, "
                  "crisp, detailed, sleek, ultramodern, magenta highlights, dark purple shadows, high contrast, "
                  "cinematic, ultra detailed, intricate, professional",
                  "painting, drawing, illustration, glitch, deformed, mutated, cross-eyed, ugly, disfigured"),
    "origami": ("origami style {prompt} . paper art, pleated paper, folded, origami art, pleats, cut and fold, "
                "centered composition",
                "noisy, sloppy, messy, grainy, highly detailed, ultra textured, photo"),
    "photographic": ("cinematic photo {prompt} . 35mm photograph, film, bokeh, professional, 4k, highly detailed",
                     "drawing, painting, crayon, sketch, graphite, impressionist, noisy, blurry, soft, deformed, "
                     "ugly"),
    "pixel-art": ("pixel-art {prompt} . low-res, blocky, pixel art style, 8-bit graphics",
                  "sloppy, messy, blurry, noisy, highly detailed, ultra textured, photo, realistic"),
    "tile-texture": ("texture {prompt} top down close-up",
                     "ugly, deformed, noisy, blurry"),
}


def apply_style(style: str | None, prompt: str, negative_prompt: str | None) -> tuple[str, str | None]:
    """The prompt and negative prompt after the style preset; `base` (or none) leaves both as given."""
    name = (style or "base").strip().lower()
    if name == "base":
        return prompt, negative_prompt
    if name not in STYLES:
        raise unsupported(f"style {style!r} is unknown; use base or one of: {', '.join(STYLES)}")
    template, style_negative = STYLES[name]
    negative = f"{style_negative}, {negative_prompt}" if negative_prompt else style_negative
    return template.replace("{prompt}", prompt), negative
