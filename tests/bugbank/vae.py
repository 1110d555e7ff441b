"""Realistic mistakes in the VAE, each of which must lose points on its test.

Each bug is a text replacement on solutions/03_vae/vae.py (the `old` text occurs exactly
once there). Grouped by the concept the named test judges.
"""
from tests.bugbank import Bug

F = "vae.py"

BUGS = [
    # ---- KL divergence ---------------------------------------------------------------
    Bug("kl_wrong_sign", test="test_kl_divergence", file=F,
        old="return 0.5 * terms.sum(dim=-1)", new="return -0.5 * terms.sum(dim=-1)",
        why="KL with the wrong sign (copied the '-0.5 * sum(1 + logvar - mu^2 - var)' form and flipped a term)"),
    Bug("kl_mean_over_latent", test="test_kl_divergence", file=F,
        old="return 0.5 * terms.sum(dim=-1)", new="return 0.5 * terms.mean(dim=-1)",
        why="averages the KL over latent dimensions instead of summing it"),
    Bug("kl_wrong_prior", test="test_kl_divergence", file=F,
        old="prior_logvar = torch.zeros_like(logvar)", new="prior_logvar = torch.ones_like(logvar)",
        why="'the prior has variance 1' written as log-variance 1: KL against N(0, e I)"),
    # ---- reparameterisation ------------------------------------------------------------
    Bug("reparam_variance_as_std", test="test_reparameterize_statistics", file=F,
        old="std = torch.exp(0.5 * logvar)\n    eps", new="std = torch.exp(logvar)\n    eps",
        why="sigma^2 used where sigma is meant: exp(logvar) instead of exp(0.5 * logvar)"),
    Bug("reparam_uniform_noise", test="test_reparameterize_statistics", file=F,
        old="eps = torch.randn_like(std)", new="eps = torch.rand_like(std)",
        why="rand_like (uniform on [0, 1)) instead of randn_like (standard normal)"),
    Bug("reparam_detached_mu", test="test_reparameterize_gradients", file=F,
        old="return mu + std * eps", new="return mu.detach() + std * eps",
        why="mu detached: no gradient reaches the encoder's mean"),
    Bug("reparam_detached_logvar", test="test_reparameterize_gradients", file=F,
        old="std = torch.exp(0.5 * logvar)\n    eps", new="std = torch.exp(0.5 * logvar).detach()\n    eps",
        why="sigma detached (e.g. sampled with torch.normal(mu, std)): no gradient reaches logvar"),
    Bug("reparam_cpu_noise", test="test_device_parity", file=F,
        old="eps = torch.randn_like(std)", new="eps = torch.randn(std.shape)",
        why="noise created on the CPU in float32 whatever the input's device"),
    # ---- ELBO --------------------------------------------------------------------------
    Bug("recon_mean_over_pixels", test="test_elbo_terms", file=F,
        old='reduction="none").sum(dim=-1)', new='reduction="none").mean(dim=-1)',
        why="reconstruction averaged over pixels while the KL is summed (a hidden beta = 64)"),
    Bug("bce_double_sigmoid", test="test_elbo_terms", file=F,
        old="binary_cross_entropy_with_logits(logits, x, reduction", new="binary_cross_entropy_with_logits(torch.sigmoid(logits), x, reduction",
        why="sigmoid applied before a loss that expects logits (sigmoid twice)"),
    Bug("elbo_adds_kl", test="test_elbo_terms", file=F,
        old='"elbo": -(recon + kl)', new='"elbo": -recon + kl',
        why="ELBO = reconstruction - KL written with recon already a loss: the KL gets the wrong sign"),
    Bug("elbo_no_sampling", test="test_elbo_uses_sample", file=F,
        old="z = reparameterize(mu, logvar)\n    recon", new="z = mu\n    recon",
        why="decodes the mean instead of a sample: the reconstruction term is not the ELBO's expectation"),
    # ---- training and generation ---------------------------------------------------------
    Bug("no_zero_grad", test="test_training_loop", file=F,
        old="        optimiser.zero_grad()\n", new="",
        why="never calls zero_grad: gradients accumulate over all steps"),
    Bug("train_maximises_loss", test="test_training_loop", file=F,
        old='loss = -elbo(model, data[index])["elbo"].mean()', new='loss = elbo(model, data[index])["elbo"].mean()',
        why="minimises the ELBO instead of maximising it"),
    Bug("train_without_kl", test="test_sample_quality", file=F,
        old='loss = -elbo(model, data[index])["elbo"].mean()', new='loss = elbo(model, data[index])["recon"].mean()',
        why="trains on the reconstruction term only: a plain autoencoder whose latents the prior does not cover"),
    Bug("sample_from_encoder", test="test_sample_from_prior", file=F,
        old="z = torch.randn(n, model.z_dim, device=weight.device, dtype=weight.dtype)",
        new="z = reparameterize(*model.encode(torch.rand(n, model.x_dim, device=weight.device, dtype=weight.dtype)))",
        why="samples z from the encoder (of random images) instead of from the prior N(0, I)"),
    Bug("sample_returns_logits", test="test_sample_quality", file=F,
        old="return torch.sigmoid(model.decode(z))", new="return model.decode(z)",
        why="returns the decoder's logits instead of pixel means in [0, 1]"),
    Bug("samples_are_training_copies", test="test_sample_quality", file=F,
        old="return torch.sigmoid(model.decode(z))",
        new=("import kitdata.digits\n    train = torch.from_numpy(kitdata.digits.load_digits('train')[0])\n"
             "    return train[torch.randint(0, len(train), (n,))]"),
        why="'samples' that are training images"),
    # ---- IWAE --------------------------------------------------------------------------
    Bug("iwae_mean_of_log_weights", test="test_iwae_grows_with_k", file=F,
        old="torch.logsumexp(log_px_z + log_pz - log_qz, dim=0) - math.log(k)",
        new="(log_px_z + log_pz - log_qz).mean(dim=0)",
        why="averages the log-weights (k copies of the ELBO) instead of log of the averaged weights"),
    Bug("iwae_missing_log_k", test="test_iwae_below_log_likelihood", file=F,
        old="dim=0) - math.log(k)", new="dim=0)",
        why="log-sum-exp without the -log k: an estimate of log(k p(x)), above log p(x)"),
    Bug("iwae_likelihood_only", test="test_iwae_k1_matches_elbo", file=F,
        old="torch.logsumexp(log_px_z + log_pz - log_qz, dim=0)", new="torch.logsumexp(log_px_z, dim=0)",
        why="weights p(x|z) without the prior-to-posterior ratio p(z) / q(z|x)"),
]
