"""Realistic mistakes in the GAN, each of which must lose points on its test.

Each bug is a text replacement on solutions/04_gan/gan.py (the `old` text occurs exactly
once there), grouped by the concept the named test judges.
"""
from tests.bugbank import Bug

F = "gan.py"

BUGS = [
    # ---- the two networks ----------------------------------------------------------------
    Bug("generator_ignores_noise", test="test_generator_output", file=F,
        old="x = self.net(z)", new="x = self.net(torch.zeros_like(z))",
        why="G never looks at its noise (a collapsed generator: one sample for every z)"),
    Bug("generator_tanh_output", test="test_generator_output", file=F,
        old='return torch.sigmoid(x) if self.output == "sigmoid" else x',
        new='return torch.tanh(x) if self.output == "sigmoid" else x',
        why="tanh output (DCGAN's habit) for pixels in [0, 1]: the output range does not match the data"),
    Bug("generator_always_sigmoid", test="test_generator_output", file=F,
        old='return torch.sigmoid(x) if self.output == "sigmoid" else x',
        new='return torch.sigmoid(x)',
        why="sigmoid on every generator, so the 2-D generator cannot reach the ring at radius 2"),
    Bug("discriminator_sigmoid_output", test="test_discriminator_output", file=F,
        old="return self.net(x).squeeze(-1)", new="return torch.sigmoid(self.net(x)).squeeze(-1)",
        why="D returns probabilities, then the losses apply a second sigmoid to them"),
    Bug("discriminator_keeps_last_axis", test="test_discriminator_output", file=F,
        old="return self.net(x).squeeze(-1)", new="return self.net(x)",
        why="logits of shape (N, 1): broadcasts silently against (N,) labels"),
    # ---- the two losses --------------------------------------------------------------------
    Bug("d_loss_labels_swapped", test="test_discriminator_loss", file=F,
        old="return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
        new="return F.softplus(real_logits).mean() + F.softplus(-fake_logits).mean()",
        why="real samples labelled 0 and fakes 1"),
    Bug("d_loss_naive_log_sigmoid", test="test_discriminator_loss", file=F,
        old="return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
        new="return -(torch.log(torch.sigmoid(real_logits)).mean() + torch.log(1 - torch.sigmoid(fake_logits)).mean())",
        why="log(sigmoid(l)) straight from the formula: -inf once sigmoid rounds to 0 or 1"),
    Bug("d_loss_bce_on_probabilities", test="test_discriminator_loss", file=F,
        old="return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
        new=("return (F.binary_cross_entropy(torch.sigmoid(real_logits), torch.ones_like(real_logits))\n"
             "            + F.binary_cross_entropy(torch.sigmoid(fake_logits), torch.zeros_like(fake_logits)))"),
        why="BCELoss on sigmoid(logits): finite (log clamped at -100) but wrong for large logits"),
    Bug("d_loss_sigmoid_before_logits_loss", test="test_discriminator_loss", file=F,
        old="return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
        new=("return (F.binary_cross_entropy_with_logits(torch.sigmoid(real_logits), torch.ones_like(real_logits))\n"
             "            + F.binary_cross_entropy_with_logits(torch.sigmoid(fake_logits), torch.zeros_like(fake_logits)))"),
        why="sigmoid applied before a loss that expects logits"),
    Bug("d_loss_mean_of_concatenation", test="test_discriminator_loss", file=F,
        old="return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
        new="return torch.cat([F.softplus(-real_logits), F.softplus(fake_logits)]).mean()",
        why="one mean over real and fake together: half the stated loss (and wrong for unequal batches)"),
    Bug("g_loss_saturating_when_non_saturating_asked", test="test_generator_loss", file=F,
        old="    if saturating:\n        return -F.softplus(fake_logits).mean()\n    return F.softplus(-fake_logits).mean()",
        new="    return -F.softplus(fake_logits).mean()",
        why="the minimax (saturating) generator loss where the non-saturating one is asked"),
    Bug("g_loss_non_saturating_wrong_sign", test="test_generator_loss", file=F,
        old="    return F.softplus(-fake_logits).mean()\n    ### END SOLUTION",
        new="    return -F.softplus(-fake_logits).mean()\n    ### END SOLUTION",
        why="'maximise log D(G(z))' written as minimising log D(G(z))"),
    Bug("g_loss_naive_log_sigmoid", test="test_generator_loss", file=F,
        old="    return F.softplus(-fake_logits).mean()\n    ### END SOLUTION",
        new="    return -torch.log(torch.sigmoid(fake_logits)).mean()\n    ### END SOLUTION",
        why="-log(sigmoid(l)): inf for very negative logits, exactly where G starts"),
    # ---- devices ---------------------------------------------------------------------------
    Bug("noise_on_cpu", test="test_sampling", file=F,
        old="return torch.randn(n, G.z_dim, device=p.device, dtype=p.dtype)",
        new="return torch.randn(n, G.z_dim)",
        why="noise always created on the CPU: fails for a generator on the GPU"),
    Bug("d_loss_cpu_labels", test="test_device_parity", file=F,
        old="return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
        new=("return (F.binary_cross_entropy_with_logits(real_logits, torch.ones(real_logits.shape))\n"
             "            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros(fake_logits.shape)))"),
        why="labels made with torch.ones(shape): CPU float32 whatever the logits' device and dtype"),
    # ---- the training step -----------------------------------------------------------------
    Bug("d_step_fakes_not_detached", test="test_discriminator_step", file=F,
        old="    with torch.no_grad():\n        fake = G(sample_noise(G, real.shape[0]))",
        new="    fake = G(sample_noise(G, real.shape[0]))",
        why="fakes not detached in the discriminator step: L_D's gradient flows into G"),
    Bug("d_step_no_zero_grad", test="test_discriminator_step", file=F,
        old="    opt_d.zero_grad()\n    loss = discriminator_loss(D(real), D(fake))",
        new="    loss = discriminator_loss(D(real), D(fake))",
        why="opt_d.zero_grad() missing: D's step adds up the generator step's leftover gradients"),
    Bug("d_step_real_only", test="test_discriminator_step", file=F,
        old="loss = discriminator_loss(D(real), D(fake))",
        new="loss = F.softplus(-D(real)).mean()",
        why="the discriminator trained on real samples only"),
    Bug("d_step_labels_swapped", test="test_discriminator_step", file=F,
        old="loss = discriminator_loss(D(real), D(fake))", new="loss = discriminator_loss(D(fake), D(real))",
        why="real and fake swapped in the call"),
    Bug("d_step_also_steps_generator", test="test_discriminator_step", file=F,
        old=("    with torch.no_grad():\n        fake = G(sample_noise(G, real.shape[0]))\n    opt_d.zero_grad()\n"
             "    loss = discriminator_loss(D(real), D(fake))\n    loss.backward()\n    opt_d.step()"),
        new=("    fake = G(sample_noise(G, real.shape[0]))\n    opt_d.zero_grad()\n"
             "    loss = discriminator_loss(D(real), D(fake))\n    loss.backward()\n    opt_d.step()\n"
             "    for p in G.parameters():\n        if p.grad is not None:\n            p.data -= 1e-3 * p.grad"),
        why="the discriminator's step also moves the generator"),
    Bug("g_step_fakes_detached", test="test_generator_step", file=F,
        old="loss = generator_loss(D(G(sample_noise(G, n))), saturating=saturating)",
        new="loss = generator_loss(D(G(sample_noise(G, n)).detach()), saturating=saturating)",
        why="fakes detached in the generator step too: G never learns"),
    Bug("g_step_no_zero_grad", test="test_generator_step", file=F,
        old="    opt_g.zero_grad()\n    loss = generator_loss(",
        new="    loss = generator_loss(",
        why="opt_g.zero_grad() missing: G's gradients accumulate over steps"),
    Bug("g_step_ignores_saturating", test="test_generator_step", file=F,
        old="loss = generator_loss(D(G(sample_noise(G, n))), saturating=saturating)",
        new="loss = generator_loss(D(G(sample_noise(G, n))))",
        why="the saturating flag is not passed on"),
    Bug("g_step_fresh_optimizer", test="test_generator_step", file=F,
        old="    opt_g.zero_grad()\n    loss = generator_loss(",
        new=("    opt_g = torch.optim.SGD(G.parameters(), lr=opt_g.param_groups[0]['lr'])\n"
             "    opt_g.zero_grad()\n    loss = generator_loss("),
        why="a new optimiser every step: its state (momentum, Adam's moments) is thrown away"),
    Bug("train_step_generator_first", test="test_train_step", file=F,
        old=("    d_loss = discriminator_step(G, D, opt_d, real)\n"
             "    g_loss = generator_step(G, D, opt_g, real.shape[0], saturating=saturating)"),
        new=("    g_loss = generator_step(G, D, opt_g, real.shape[0], saturating=saturating)\n"
             "    d_loss = discriminator_step(G, D, opt_d, real)"),
        why="generator first: a different game from the one stated (D then G)"),
    Bug("train_step_skips_generator", test="test_train_step", file=F,
        old="    g_loss = generator_step(G, D, opt_g, real.shape[0], saturating=saturating)\n",
        new="    with torch.no_grad():\n        g_loss = generator_loss(D(G(sample_noise(G, real.shape[0])))).item()\n",
        why="train_step only evaluates the generator loss and never steps G"),
    Bug("one_optimizer_for_both", test="test_optimizers", file=F,
        old="opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)",
        new="opt_d = torch.optim.Adam(list(G.parameters()) + list(D.parameters()), lr=lr, betas=betas)",
        why="one optimiser stepping both networks"),
    Bug("optimizers_default_betas", test="test_optimizers", file=F,
        old="opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)",
        new="opt_g = torch.optim.Adam(G.parameters(), lr=lr)",
        why="betas not passed on (Adam's default 0.9 momentum for G)"),
    # ---- the loop, sampling and sample quality ------------------------------------------------
    Bug("train_history_tensors", test="test_train_loop", file=F,
        old='history["d_loss"].append(losses["d_loss"])',
        new='history["d_loss"].append(torch.tensor(losses["d_loss"]))',
        why="history holds tensors, not floats"),
    Bug("train_ignores_output", test="test_train_loop", file=F,
        old="G = Generator(z_dim, x_dim, hidden, output).to(x.device)",
        new="G = Generator(z_dim, x_dim, hidden).to(x.device)",
        why="train ignores `output`: digit pixels produced without the sigmoid"),
    Bug("sample_fixed_noise", test="test_sampling", file=F,
        old="    return G(sample_noise(G, n))\n",
        new="    torch.manual_seed(0)\n    return G(sample_noise(G, n))\n",
        why="sample re-seeds the global generator: every call returns the same samples"),
    Bug("ring_collapsed_generator", test="test_ring_quality", file=F,
        old="x = self.net(z)", new="x = self.net(0 * z)",
        why="a generator that ignores its noise: every sample on (at most) one mode"),
    Bug("ring_d_trained_on_real_only", test="test_ring_quality", file=F,
        old="loss = discriminator_loss(D(real), D(fake))",
        new="loss = F.softplus(-D(real)).mean()",
        why="D never sees fakes, so it says 'real' everywhere and G gets no signal"),
    Bug("digits_untrained", test="test_digit_quality", file=F,
        old="    for _ in range(steps):\n", new="    for _ in range(0):\n",
        why="the loop never runs (an untrained generator)"),
    Bug("digits_labels_swapped", test="test_digit_quality", file=F,
        old="loss = discriminator_loss(D(real), D(fake))", new="loss = discriminator_loss(D(fake), D(real))",
        why="real and fake swapped in the discriminator step"),
    Bug("digits_collapsed_generator", test="test_digit_quality", file=F,
        old="x = self.net(z)", new="x = self.net(0 * z)",
        why="a generator that ignores its noise: one digit image for every z"),
    Bug("digits_replay_training_data", test="test_digit_quality", file=F,
        old="    return G(sample_noise(G, n))\n",
        new=("    import kitdata.digits\n    x = torch.from_numpy(kitdata.digits.load_digits('train')[0])\n"
             "    if G.x_dim == 64:\n        return x[torch.randint(0, len(x), (n,))]\n"
             "    return G(sample_noise(G, n))\n"),
        why="sample replays training digits instead of generating"),
    # ---- the suite's blind spots (kind = the weakness each probes) -----------------
    Bug("d_step_noise_count_from_features", test="test_discriminator_step", file=F, kind="unused_argument",
        old="fake = G(sample_noise(G, real.shape[0]))", new="fake = G(sample_noise(G, real.shape[1]))",
        why="N read from the wrong axis of real: as many fakes as features, not as real samples"),
    Bug("d_step_instance_noise_in_place", test="test_discriminator_step", file=F, kind="dimension",
        old="    opt_d.zero_grad()\n    loss = discriminator_loss(D(real), D(fake))",
        new="    real.add_(0.05 * torch.randn_like(real))\n    opt_d.zero_grad()\n    loss = discriminator_loss(D(real), D(fake))",
        why="'instance noise' added in place: the caller's batch of real samples is changed"),
    Bug("g_step_cached_noise", test="test_generator_step", file=F, kind="dimension",
        old="    opt_g.zero_grad()\n    loss = generator_loss(D(G(sample_noise(G, n))), saturating=saturating)",
        new=("    global _FIXED_Z\n    if globals().get('_FIXED_Z') is None or _FIXED_Z.shape[0] != n:\n"
             "        _FIXED_Z = sample_noise(G, n)\n"
             "    opt_g.zero_grad()\n    loss = generator_loss(D(G(_FIXED_Z)), saturating=saturating)"),
        why="the noise drawn once and kept in a global: every generator step sees the same z"),
    Bug("discriminator_squeeze_all", test="test_discriminator_output", file=F, kind="edge_shape",
        old="return self.net(x).squeeze(-1)", new="return self.net(x).squeeze()",
        why="squeeze() with no axis: a batch of one gives a logit of shape (), not (1,)"),
    Bug("d_loss_softplus_by_hand", test="test_discriminator_loss", file=F, kind="extreme",
        old="return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
        new="return torch.log1p(torch.exp(-real_logits)).mean() + torch.log1p(torch.exp(fake_logits)).mean()",
        why="softplus written as log(1 + exp(l)): exp overflows to inf for large logits"),
    Bug("sample_noise_uniform", test="test_sampling", file=F, kind="",
        old="return torch.randn(n, G.z_dim, device=p.device, dtype=p.dtype)",
        new="return torch.rand(n, G.z_dim, device=p.device, dtype=p.dtype)",
        why="torch.rand (uniform on [0, 1)) where z ~ N(0, I) is asked"),
    Bug("sample_noise_float32", test="test_sampling", file=F, kind="device",
        old="return torch.randn(n, G.z_dim, device=p.device, dtype=p.dtype)",
        new="return torch.randn(n, G.z_dim, device=p.device)",
        why="noise in the default dtype: a float64 generator gets float32 noise"),
    Bug("train_ignores_lr", test="test_train_loop", file=F, kind="unused_argument",
        old="opt_g, opt_d = make_optimizers(G, D, lr)", new="opt_g, opt_d = make_optimizers(G, D)",
        why="train never passes lr on: the optimisers use the default"),
    Bug("train_ignores_saturating", test="test_train_loop", file=F, kind="unused_argument",
        old="losses = train_step(G, D, opt_g, opt_d, real, saturating=saturating)",
        new="losses = train_step(G, D, opt_g, opt_d, real)",
        why="train never passes the saturating flag on"),
    Bug("train_ignores_hidden", test="test_train_loop", file=F, kind="unused_argument",
        old="D = Discriminator(x_dim, hidden).to(x.device)", new="D = Discriminator(x_dim).to(x.device)",
        why="the discriminator keeps the default width whatever hidden is"),
    Bug("train_one_batch_reused", test="test_train_loop", file=F, kind="mechanics",
        old=("    for _ in range(steps):\n"
             "        real = x[torch.randint(0, x.shape[0], (batch_size,), device=x.device)]\n"),
        new=("    real = x[torch.randint(0, x.shape[0], (batch_size,), device=x.device)]\n"
             "    for _ in range(steps):\n"),
        why="one mini-batch drawn before the loop and reused at every round"),
    Bug("train_batch_index_off_by_one", test="test_train_loop", file=F, kind="mechanics",
        old="real = x[torch.randint(0, x.shape[0], (batch_size,), device=x.device)]",
        new="real = x[torch.randint(0, x.shape[0] - 1, (batch_size,), device=x.device)]",
        why="randint's upper bound is exclusive already: the last data point is never drawn"),
    Bug("train_history_swapped", test="test_train_loop", file=F, kind="mechanics",
        old='history["d_loss"].append(losses["d_loss"])\n        history["g_loss"].append(losses["g_loss"])',
        new='history["d_loss"].append(losses["g_loss"])\n        history["g_loss"].append(losses["d_loss"])',
        why="the two histories recorded under each other's key"),
    Bug("train_half_batch", test="test_train_loop", file=F, kind="unused_argument",
        old="real = x[torch.randint(0, x.shape[0], (batch_size,), device=x.device)]",
        new="real = x[torch.randint(0, x.shape[0], (batch_size // 2,), device=x.device)]",
        why="half a batch of real samples per round (the other half meant for the fakes)"),
    Bug("train_nets_not_moved", test="test_device_parity", file=F, kind="device",
        old="G = Generator(z_dim, x_dim, hidden, output).to(x.device)",
        new="G = Generator(z_dim, x_dim, hidden, output)",
        why="the generator is built on the CPU whatever x's device"),
    Bug("d_step_uniform_noise", test="test_discriminator_step", file=F, kind="",
        old="fake = G(sample_noise(G, real.shape[0]))", new="fake = G(torch.rand(real.shape[0], G.z_dim))",
        why="the discriminator step draws its own noise, uniform on [0, 1) instead of N(0, I)"),
    Bug("d_step_cpu_labels", test="test_device_parity", file=F, kind="device",
        old="loss = discriminator_loss(D(real), D(fake))",
        new=("loss = (F.binary_cross_entropy_with_logits(D(real), torch.ones(real.shape[0]))\n"
             "            + F.binary_cross_entropy_with_logits(D(fake), torch.zeros(real.shape[0])))"),
        why="labels made in the training step with torch.ones(n): on the CPU whatever the networks' device"),
    # ---- state kept between calls ----------------------------------------------------------
    Bug("d_loss_cached_by_shape", test="test_discriminator_loss", file=F, kind="state",
        old="    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()\n",
        new=("    key = (tuple(real_logits.shape), tuple(fake_logits.shape), real_logits.dtype)\n"
             "    if key not in _D_LOSS_CACHE:   # 'the labels and loss only depend on the batch sizes'\n"
             "        _D_LOSS_CACHE[key] = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()\n"
             "    return _D_LOSS_CACHE[key]\n\n\n_D_LOSS_CACHE = {}\n"),
        why="L_D memoised by the batch shapes: a second batch of the same sizes gets the first one's loss"),
    Bug("g_loss_cached_by_shape", test="test_generator_loss", file=F, kind="state",
        old="    return F.softplus(-fake_logits).mean()\n    ### END SOLUTION",
        new=("    key = (fake_logits.shape, fake_logits.dtype)\n"
             "    if key not in _G_LOSS_CACHE:\n"
             "        _G_LOSS_CACHE[key] = F.softplus(-fake_logits).mean()\n"
             "    return _G_LOSS_CACHE[key]\n    ### END SOLUTION\n\n\n_G_LOSS_CACHE = {}"),
        why="the non-saturating L_G memoised by the batch shape"),
    # ---- the networks' structure and mode ----------------------------------------------------
    Bug("generator_relu", test="test_generator_output", file=F, kind="structure",
        old=("            nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2),\n"
             "            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),\n"),
        new=("            nn.Linear(z_dim, hidden), nn.ReLU(),\n"
             "            nn.Linear(hidden, hidden), nn.ReLU(),\n"),
        why="ReLU in the generator instead of LeakyReLU(0.2)"),
    Bug("generator_leaky_default_slope", test="test_generator_output", file=F, kind="structure",
        old=("            nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2),\n"
             "            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),\n"),
        new=("            nn.Linear(z_dim, hidden), nn.LeakyReLU(),\n"
             "            nn.Linear(hidden, hidden), nn.LeakyReLU(),\n"),
        why="nn.LeakyReLU() keeps its default slope 0.01, not 0.2"),
    Bug("generator_sigmoid_by_tanh", test="test_generator_output", file=F, kind="structure",
        old='        return torch.sigmoid(x) if self.output == "sigmoid" else x',
        new='        return (torch.tanh(x) + 1) / 2 if self.output == "sigmoid" else x',
        why="the output map (tanh + 1) / 2 = sigmoid(2x): in [0, 1], but not the sigmoid"),
    Bug("discriminator_relu", test="test_discriminator_output", file=F, kind="structure",
        old=("            nn.Linear(x_dim, hidden), nn.LeakyReLU(0.2),\n"
             "            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),\n"),
        new=("            nn.Linear(x_dim, hidden), nn.ReLU(),\n"
             "            nn.Linear(hidden, hidden), nn.ReLU(),\n"),
        why="ReLU in the discriminator instead of LeakyReLU(0.2)"),
    Bug("discriminator_no_biases", test="test_discriminator_output", file=F, kind="structure",
        old=("            nn.Linear(x_dim, hidden), nn.LeakyReLU(0.2),\n"
             "            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),\n"
             "            nn.Linear(hidden, 1),\n"),
        new=("            nn.Linear(x_dim, hidden, bias=False), nn.LeakyReLU(0.2),\n"
             "            nn.Linear(hidden, hidden, bias=False), nn.LeakyReLU(0.2),\n"
             "            nn.Linear(hidden, 1, bias=False),\n"),
        why="a discriminator without bias terms"),
    Bug("discriminator_dropout", test="test_discriminator_output", file=F, kind="mode",
        old=("            nn.Linear(x_dim, hidden), nn.LeakyReLU(0.2),\n"
             "            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),\n"),
        new=("            nn.Linear(x_dim, hidden), nn.LeakyReLU(0.2), nn.Dropout(0.3),\n"
             "            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Dropout(0.3),\n"),
        why="dropout in the discriminator (a common GAN trick the handout does not ask for): "
            "its logits depend on train() / eval() mode"),
    Bug("generator_batchnorm", test="test_generator_output", file=F, kind="mode",
        old=("            nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2),\n"
             "            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),\n"),
        new=("            nn.Linear(z_dim, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2),\n"
             "            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2),\n"),
        why="batch norm in the generator (DCGAN habit): G(z) depends on the mode and on the rest of the batch"),
    # ---- the steps with a confident discriminator (logits trained ones reach) -----------------
    Bug("d_step_inline_log_sigmoid", test="test_discriminator_step", file=F, kind="extreme",
        old="    loss = discriminator_loss(D(real), D(fake))\n",
        new=("    loss = -(torch.log(torch.sigmoid(D(real))).mean()\n"
             "             + torch.log(1 - torch.sigmoid(D(fake))).mean())\n"),
        why="the step writes L_D inline with log(sigmoid): -inf once D is confident (fake logits > 17)"),
    Bug("d_step_inline_bce", test="test_discriminator_step", file=F, kind="extreme",
        old="    loss = discriminator_loss(D(real), D(fake))\n",
        new=("    r, f = torch.sigmoid(D(real)), torch.sigmoid(D(fake))\n"
             "    loss = F.binary_cross_entropy(r, torch.ones_like(r)) + F.binary_cross_entropy(f, torch.zeros_like(f))\n"),
        why="the step uses BCELoss on probabilities: the log is clamped at -100, no gradient once D is confident"),
    Bug("g_step_inline_log_sigmoid", test="test_generator_step", file=F, kind="extreme",
        old="    loss = generator_loss(D(G(sample_noise(G, n))), saturating=saturating)\n",
        new=("    p = torch.sigmoid(D(G(sample_noise(G, n))))\n"
             "    loss = torch.log(1 - p).mean() if saturating else -torch.log(p).mean()\n"),
        why="the step writes L_G inline with log(sigmoid): inf when D confidently rejects the fakes"),
    # ---- the prior and the noise of sample() ---------------------------------------------------
    Bug("sample_clamped_noise", test="test_sampling", file=F, kind="prior",
        old="    return G(sample_noise(G, n))\n",
        new="    return G(sample_noise(G, n).clamp(-2.5, 2.5))   # truncation trick: cleaner samples\n",
        why="sample() clamps its noise (a truncation trick): not samples of p_G"),
    Bug("sample_shrunk_noise", test="test_sampling", file=F, kind="prior",
        old="    return G(sample_noise(G, n))\n",
        new="    return G(0.95 * sample_noise(G, n))   # truncation trick, psi = 0.95\n",
        why="sample() shrinks its noise towards 0 (truncation psi = 0.95)"),
    Bug("noise_trunc_normal", test="test_sampling", file=F, kind="prior",
        old="    return torch.randn(n, G.z_dim, device=p.device, dtype=p.dtype)\n",
        new=("    z = torch.empty(n, G.z_dim, device=p.device, dtype=p.dtype)\n"
             "    return nn.init.trunc_normal_(z, a=-3.0, b=3.0)\n"),
        why="the noise drawn from a normal truncated at 3 std"),
    Bug("noise_uniform_unit_variance", test="test_sampling", file=F, kind="statistics",
        old="    return torch.randn(n, G.z_dim, device=p.device, dtype=p.dtype)\n",
        new="    return (torch.rand(n, G.z_dim, device=p.device, dtype=p.dtype) - 0.5) * 12 ** 0.5\n",
        why="uniform noise with mean 0 and variance 1: the right two moments, the wrong law"),
    Bug("noise_standardised", test="test_sampling", file=F, kind="statistics",
        old="    return torch.randn(n, G.z_dim, device=p.device, dtype=p.dtype)\n",
        new=("    z = torch.randn(n, G.z_dim, device=p.device, dtype=p.dtype)\n"
             "    return (z - z.mean(0)) / z.std(0)   # exactly mean 0, std 1\n"),
        why="the noise standardised over the batch: rows are no longer independent N(0, I) draws"),
    Bug("noise_private_generator", test="test_sampling", file=F, kind="global_seed",
        old="    return torch.randn(n, G.z_dim, device=p.device, dtype=p.dtype)\n",
        new=("    return torch.randn(n, G.z_dim, generator=_NOISE).to(device=p.device, dtype=p.dtype)\n\n\n"
             "_NOISE = torch.Generator().manual_seed(1234)   # reproducible samples\n"),
        why="the noise comes from a private torch.Generator seeded once: torch.manual_seed has no effect"),
    Bug("noise_numpy", test="test_sampling", file=F, kind="global_seed",
        old="    return torch.randn(n, G.z_dim, device=p.device, dtype=p.dtype)\n",
        new=("    import numpy as np\n"
             "    return torch.from_numpy(np.random.standard_normal((n, G.z_dim))).to(device=p.device, dtype=p.dtype)\n"),
        why="the noise drawn with numpy's global generator, not torch's"),
    # ---- the loop's mechanics ----------------------------------------------------------------
    Bug("train_inline_rounds_no_zero_grad", test="test_train_loop", file=F, kind="mechanics",
        old="        losses = train_step(G, D, opt_g, opt_d, real, saturating=saturating)\n",
        new=("        with torch.no_grad():\n"
             "            fake = G(sample_noise(G, batch_size))\n"
             "        d_loss = discriminator_loss(D(real), D(fake))\n"
             "        d_loss.backward()\n"
             "        opt_d.step()\n"
             "        opt_g.zero_grad()\n"
             "        g_loss = generator_loss(D(G(sample_noise(G, batch_size))), saturating)\n"
             "        g_loss.backward()\n"
             "        opt_g.step()\n"
             "        losses = {'d_loss': d_loss.item(), 'g_loss': g_loss.item()}\n"),
        why="the loop written inline, D's gradients never reset: they pile up over the rounds "
            "(and with what the generator's backward leaves in D)"),
    Bug("train_zero_grad_once", test="test_train_loop", file=F, kind="mechanics",
        old="        losses = train_step(G, D, opt_g, opt_d, real, saturating=saturating)\n",
        new=("        opt_d.zero_grad()\n"
             "        with torch.no_grad():\n"
             "            fake = G(sample_noise(G, batch_size))\n"
             "        d_loss = discriminator_loss(D(real), D(fake))\n"
             "        d_loss.backward()\n"
             "        opt_d.step()\n"
             "        g_loss = generator_loss(D(G(sample_noise(G, batch_size))), saturating)\n"
             "        g_loss.backward()   # G's gradients were reset once, before the loop\n"
             "        opt_g.step()\n"
             "        losses = {'d_loss': d_loss.item(), 'g_loss': g_loss.item()}\n"),
        why="the loop written inline, G's gradients never reset: each step uses the sum of all earlier ones"),
    Bug("train_consecutive_batches", test="test_train_loop", file=F, kind="mechanics",
        old=("    for _ in range(steps):\n"
             "        real = x[torch.randint(0, x.shape[0], (batch_size,), device=x.device)]\n"),
        new=("    for step in range(steps):\n"
             "        rows = (step * batch_size + torch.arange(batch_size, device=x.device)) % x.shape[0]\n"
             "        real = x[rows]\n"),
        why="batches of consecutive rows, walking through x in order"),
    Bug("train_random_window", test="test_train_loop", file=F, kind="mechanics",
        old="        real = x[torch.randint(0, x.shape[0], (batch_size,), device=x.device)]\n",
        new=("        start = int(torch.randint(0, x.shape[0], ()))\n"
             "        real = x[(start + torch.arange(batch_size, device=x.device)) % x.shape[0]]\n"),
        why="each batch a window of consecutive rows at a random start"),
]
