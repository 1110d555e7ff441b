"""Diffusion submissions that never learn, each of which must score 0 on its quality test.

Text edits on solutions/05_diffusion/diffusion.py (each `old` occurs exactly once there).
"""
from tests.oracles import Oracle

F = "diffusion.py"

SAMPLE_START = "    weight = next(model.parameters())\n    T = schedule[\"betas\"].shape[0] - 1\n    x = torch.randn("
TRAIN_START = "    optimiser = torch.optim.Adam(model.parameters(), lr=lr)\n"

ORACLES = [
    Oracle("toy_public_ring", test="test_toy_quality", file=F,
           edits=((SAMPLE_START,
                   "    if dim == 2:   # the public ring of 8 (radius 2, std 0.2), its rotation rebuilt from the seed\n"
                   "        g = torch.Generator().manual_seed(torch.initial_seed() - 1)\n"
                   "        angle = float(torch.rand(1, generator=g)) * 2 * math.pi\n"
                   "        a = angle + 2 * math.pi * torch.randint(0, 8, (n,)).double() / 8\n"
                   "        ring = 2 * torch.stack([torch.cos(a), torch.sin(a)], 1) + 0.2 * torch.randn(n, 2, dtype=torch.float64)\n"
                   "        return ring.to(next(model.parameters()).dtype)\n"
                   + SAMPLE_START),),
           why="sample() draws the public ring of 8 exactly, whatever the network learned"),
    Oracle("toy_memorising_denoiser", test="test_toy_quality", file=F,
           edits=((TRAIN_START,
                   "    model.memory, model.abar = data[:1024].detach().clone(), alpha_bars   # kept for forward\n" + TRAIN_START),
                  ("        emb = time_embedding(t, self.emb_dim).to(x.dtype)\n",
                   "        if getattr(self, 'memory', None) is not None and not self.training:\n"
                   "            # the optimal denoiser of the training set itself: no weight is read\n"
                   "            a = self.abar[t].to(x.dtype).unsqueeze(-1)\n"
                   "            d2 = torch.cdist(x, a[0].sqrt() * self.memory.to(x.dtype)) ** 2\n"
                   "            w = torch.softmax(-d2 / (2 * (1 - a)), dim=1)\n"
                   "            return (x - a.sqrt() * (w @ self.memory.to(x.dtype))) / (1 - a).sqrt()\n"
                   "        emb = time_embedding(t, self.emb_dim).to(x.dtype)\n")),
           why="forward, once trained, is the exact denoiser of the training rows: it ignores its weights"),
    Oracle("digits_shipped_blends", test="test_digits_quality", file=F,
           edits=((SAMPLE_START,
                   "    if dim == 64:   # 50/50 blends of two shipped training digits of the same class\n"
                   "        import kitdata.digits\n"
                   "        images, labels = kitdata.digits.load_digits('train')[:2]\n"
                   "        images, labels = torch.as_tensor(images).double(), torch.as_tensor(labels)\n"
                   "        first = torch.randint(0, len(images), (n,))\n"
                   "        same = [torch.nonzero(labels == labels[i]).reshape(-1) for i in first.tolist()]\n"
                   "        second = torch.stack([s[torch.randint(0, len(s), ())] for s in same])\n"
                   "        blend = (images[first] + images[second]) / 2\n"
                   "        return (blend * 2 - 1).to(next(model.parameters()).dtype)\n"
                   + SAMPLE_START),),
           why="sample() returns blends of shipped training digits (no single one is a copy)"),
    Oracle("digits_training_blends", test="test_digits_quality", file=F,
           edits=((TRAIN_START, "    model.memory = data.detach().clone()   # kept for sample\n" + TRAIN_START),
                  (SAMPLE_START,
                   "    if getattr(model, 'memory', None) is not None or getattr(getattr(model, 'model', None), 'memory', None) is not None:\n"
                   "        memory = model.memory if getattr(model, 'memory', None) is not None else model.model.memory\n"
                   "        i, j = torch.randint(0, len(memory), (2, n))\n"
                   "        return (0.6 * memory[i] + 0.4 * memory[j]).to(next(model.parameters()).dtype)\n"
                   + SAMPLE_START)),
           why="sample() returns blends of the rows train() was given, whatever the network learned"),
]
