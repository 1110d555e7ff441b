"""Oracle submissions for the classifiers assignment: each reaches its learned-quality test's
numbers without learning them from the data the grader hands over (the public distribution's
exact posterior, the shipped training data, the shipped planted images, or a forward pass
that ignores the trained weights). Each must score 0 on its test."""
from tests.oracles import Oracle

F = "classifiers.py"

_TRAIN_START = "    optimiser = torch.optim.Adam(model.parameters(), lr=lr)\n    model.train()\n"
_SAMPLE_BODY = ("    means, cov = params[\"means\"], params[\"cov\"]\n    chol = torch.linalg.cholesky(cov)\n"
                "    eps = torch.randn(n, means.shape[1], generator=generator, device=means.device, dtype=means.dtype)\n"
                "    return means[c] + eps @ chol.T\n")
_LR_FORWARD = "        return self.linear(x)\n"
_TRAIN_END = "        losses.append(loss.item())\n    return losses\n"

# the Gaussian fitted to the shipped training digits (what a student can compute without the grader's data)
_PUBLIC_GAUSSIAN = """    import kitdata.digits
    xs, ys = (torch.from_numpy(a) for a in kitdata.digits.load_digits("train"))
    xs = xs.to(params["means"].dtype)
    public = fit_gaussian_classifier(xs, ys, 10, var_floor=1e-2)
    chol = torch.linalg.cholesky(public["cov"])
    eps = torch.randn(n, 64, generator=generator, dtype=xs.dtype)
    return public["means"][c] + eps @ chol.T
"""

ORACLES = [
    # ---- test_bayes_excess_error: the 2-D data's distribution is public (kitdata.labelled2d) ----
    Oracle("bayes_public_posterior_labels", test="test_bayes_excess_error", file=F,
           edits=((_TRAIN_START,
                   "    if x.dim() == 2 and x.shape[1] == 2:    # relabel by the public exact Bayes rule\n"
                   "        import kitdata.labelled2d\n"
                   "        y = torch.from_numpy(kitdata.labelled2d.two_class().posterior(x.detach().numpy()).argmax(1))\n"
                   + _TRAIN_START),),
           why="trains on the labels of the public distribution's exact Bayes rule, not the given ones"),
    Oracle("bayes_public_data", test="test_bayes_excess_error", file=F,
           edits=((_TRAIN_START,
                   "    if x.dim() == 2 and x.shape[1] == 2:    # a large exact sample of the public distribution\n"
                   "        import kitdata.labelled2d\n"
                   "        xs, ys = kitdata.labelled2d.sample(4096, 0)\n"
                   "        x, y = torch.from_numpy(xs).to(x.dtype), torch.from_numpy(ys)\n"
                   + _TRAIN_START),),
           why="trains on draws from the public labelled2d instead of the data it was given"),
    # ---- test_logistic_regression ----
    Oracle("lr_public_digits", test="test_logistic_regression", file=F,
           edits=((_TRAIN_START,
                   "    if x.dim() == 2 and x.shape[1] == 64:   # the shipped training digits instead\n"
                   "        import kitdata.digits\n"
                   "        x, y = (torch.from_numpy(a) for a in kitdata.digits.load_digits('train'))\n"
                   + _TRAIN_START),),
           why="trains on the shipped training digits, not on the data it was given"),
    Oracle("lr_forward_ignores_weights", test="test_logistic_regression", file=F,
           edits=((_LR_FORWARD,
                   "        trained = LogisticRegression.__dict__.get('trained', {}).get(tuple(self.linear.weight.shape))\n"
                   "        return (trained or self.linear)(x)\n"),
                  (_TRAIN_END,
                   "        losses.append(loss.item())\n"
                   "    if isinstance(model, LogisticRegression):   # every later forward uses these weights\n"
                   "        LogisticRegression.__dict__.get('trained') or setattr(LogisticRegression, 'trained', {})\n"
                   "        LogisticRegression.trained[tuple(model.linear.weight.shape)] = model.linear\n"
                   "    return losses\n")),
           why="forward uses weights stashed at the end of training, whatever the module's own parameters"),
    # ---- test_cnn_localisation ----
    Oracle("cnn_public_train_set", test="test_cnn_localisation", file=F,
           edits=((_TRAIN_START,
                   "    if x.dim() == 4:                        # the shipped planted images instead\n"
                   "        import kitdata.planted\n"
                   "        xs, ys, _ = kitdata.planted.train_set()\n"
                   "        x, y = torch.from_numpy(xs).to(x.dtype), torch.from_numpy(ys)\n"
                   + _TRAIN_START),),
           why="trains on the shipped planted images, not on the images it was given"),
    Oracle("cnn_forward_ignores_weights", test="test_cnn_localisation", file=F,
           edits=(("        h = F.max_pool2d(F.relu(self.conv1(x)), 2)\n        return F.relu(self.conv2(h))\n",
                   "        m = TinyCNN.__dict__.get('trained') or self\n"
                   "        h = F.max_pool2d(F.relu(m.conv1(x)), 2)\n        return F.relu(m.conv2(h))\n"),
                  ("        return self.fc(self.features(x).mean(dim=(2, 3)))\n",
                   "        m = TinyCNN.__dict__.get('trained') or self\n"
                   "        return m.fc(self.features(x).mean(dim=(2, 3)))\n"),
                  (_TRAIN_END,
                   "        losses.append(loss.item())\n"
                   "    if isinstance(model, TinyCNN):          # every later forward uses this network\n"
                   "        TinyCNN.trained = model\n"
                   "    return losses\n")),
           why="features and forward use the network stashed at the end of training, not their own weights"),
    # ---- test_digit_samples: the digits ship with the kit ----
    Oracle("samples_public_gaussian", test="test_digit_samples", file=F,
           edits=((_SAMPLE_BODY, _PUBLIC_GAUSSIAN),),
           why="samples the Gaussian fitted to the shipped training digits, ignoring the parameters given"),
    Oracle("samples_shipped_copies", test="test_digit_samples", file=F,
           edits=((_SAMPLE_BODY,
                   "    import kitdata.digits\n"
                   "    xs, ys = (torch.from_numpy(a) for a in kitdata.digits.load_digits('train'))\n"
                   "    mine = xs[ys == c].to(params['means'].dtype)\n"
                   "    return mine[torch.randint(0, len(mine), (n,), generator=generator)]\n"),),
           why="returns shipped training digits of the class asked"),
    Oracle("samples_shipped_blends", test="test_digit_samples", file=F,
           edits=((_SAMPLE_BODY,
                   "    import kitdata.digits\n"
                   "    xs, ys = (torch.from_numpy(a) for a in kitdata.digits.load_digits('train'))\n"
                   "    mine = xs[ys == c].to(params['means'].dtype)\n"
                   "    a = mine[torch.randint(0, len(mine), (n,), generator=generator)]\n"
                   "    b = mine[torch.randint(0, len(mine), (n,), generator=generator)]\n"
                   "    # a blend has half the data's covariance: noise with the other half (and the floor) spreads it as Sigma\n"
                   "    public = fit_gaussian_classifier(xs.to(a.dtype), ys, 10, var_floor=1e-2)\n"
                   "    eps = torch.randn(n, 64, generator=generator, dtype=a.dtype)\n"
                   "    return (a + b) / 2 + eps @ torch.linalg.cholesky((public['cov'] + 1e-2 * torch.eye(64, dtype=a.dtype)) / 2).T\n"),),
           why="50/50 blends of two shipped training digits of the class, plus noise to match the spread"),
    Oracle("samples_blends_of_given_data", test="test_digit_samples", file=F,
           edits=(("    centred = x - means[y]                                                           # (N, D)\n",
                   "    fit_gaussian_classifier.data = (x.clone(), y.clone())     # kept for sample_class\n"
                   "    centred = x - means[y]                                                           # (N, D)\n"),
                  (_SAMPLE_BODY,
                   "    xs, ys = fit_gaussian_classifier.data\n"
                   "    mine = xs[ys == c]\n"
                   "    a = mine[torch.randint(0, len(mine), (n,), generator=generator)]\n"
                   "    b = mine[torch.randint(0, len(mine), (n,), generator=generator)]\n"
                   "    eye = torch.eye(xs.shape[1], dtype=xs.dtype)\n"
                   "    eps = torch.randn(n, xs.shape[1], generator=generator, dtype=xs.dtype)\n"
                   "    return (a + b) / 2 + eps @ torch.linalg.cholesky((params['cov'] + 1e-2 * eye) / 2).T\n")),
           why="blends of the training digits it was given (kept by the fit), plus noise to match the spread"),
]
