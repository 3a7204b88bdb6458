/// ModelsLab's scheduler names (diffusers' class names) beside what each runs as on a catalog
/// model: read both ways, by the ModelsLab dialect (a member's name to the catalog's) and by the
/// ModelsLab upstream (the catalog's back to ModelsLab's), so that the two cannot drift apart.
public enum ModelsLabSchedulerNames {
    /// On SD 1.5 and SDXL: ModelsLab's name to the catalog's scheduler name.
    public static let schedulers: [String: String] = [
        "DDPMScheduler": "DDPM", "DDIMScheduler": "DDIM", "PNDMScheduler": "PNDM", "LMSDiscreteScheduler": "LMS",
        "EulerDiscreteScheduler": "Euler", "EulerAncestralDiscreteScheduler": "Euler a", "DPMSolverMultistepScheduler": "DPM Multi",
        "DPMSolverSinglestepScheduler": "DPM Single", "HeunDiscreteScheduler": "Heun", "UniPCMultistepScheduler": "UniPC",
    ]

    /// On SD3: ModelsLab's name to ComfyUI's sampler name.
    public static let samplers: [String: String] = [
        "DDPMScheduler": "ddpm", "DDIMScheduler": "ddim", "LMSDiscreteScheduler": "lms", "EulerDiscreteScheduler": "euler",
        "EulerAncestralDiscreteScheduler": "euler_ancestral", "DPMSolverMultistepScheduler": "dpmpp_2m", "HeunDiscreteScheduler": "heun",
        "UniPCMultistepScheduler": "uni_pc", "LCMScheduler": "lcm", "KDPM2DiscreteScheduler": "dpm_2",
        "KDPM2AncestralDiscreteScheduler": "dpm_2_ancestral",
    ]

    /// ModelsLab's name for a catalog value of `table` (matched case-insensitively, as the catalog
    /// matches enums); nil when ModelsLab has none.
    public static func modelsLabName(for value: String, in table: [String: String]) -> String? {
        let lowered = value.lowercased()
        return table.first { $0.value.lowercased() == lowered }?.key
    }
}
