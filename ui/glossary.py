"""The terms the app uses, explained once: the Learn page's glossary and the other pages' help texts."""

GLOSSARY: dict[str, str] = {
    "Forget acc": "Accuracy (%) on the training samples to be forgotten. Unlearning should bring it down to what "
                  "a model that never saw them would score (the retrained oracle's).",
    "Retain acc": "Accuracy (%) on the training samples to be kept. Unlearning should leave it as it was.",
    "Test acc": "Accuracy (%) on held-out test samples: of the retained classes for class-wise forgetting, all of "
                "them for random-subset forgetting.",
    "UA": "Unlearning accuracy = 100 − forget accuracy: how much of the forget set the model now gets wrong.",
    "MIA efficacy (SVC)": "The unlearning literature's SVC MIA (as in SalUn and Unlearn-Sparse): an RBF support-vector "
                    "attacker (C = 3) learns to tell retain samples from unseen test samples by the model's "
                    "confidence in the true class; MIA efficacy is the share (%) of forget samples it calls "
                    "unseen. Higher means the forget set looks as if it was never trained on. Where the model is "
                    "as sure of unseen samples as of trained ones (the blobs toy), the attacker learns nothing "
                    "and its verdict jumps between 0 and 100 %.",
    "Avg gap": "Mean absolute difference to the retrained oracle over UA, retain acc, test acc and MIA efficacy: "
               "0 means indistinguishable from retraining without the forget set. Lower is better.",
    "Retrained oracle": "The same model trained from scratch on the retain set only: what perfect unlearning would "
                        "give, and what exact unlearning costs (a full retraining).",
    "Pareto front": "The points no other point beats on both objectives at once (retain accuracy and UA). Every "
                    "point on it is a different, defensible trade-off.",
    "Hypervolume": "The area that a set of points dominates, up to the reference point (0, 0), divided by 100·100: "
                   "one number for how good and how wide a method's front is. Bigger is better.",
    "Dual cone": "The directions that make neither loss worse to first order: those with a non-negative inner "
                 "product with both gradients. Its width in the gradients' plane is Θ = π − φ, φ the angle "
                 "between them.",
    "Pivot": "CUP's step: start at u_r (pure retain progress, no change to the forget loss) and rotate towards u_f "
             "(pure forgetting, no change to the retain loss) by the angle ψ = γ·Θ.",
    "Intensity γ": "CUP's knob in [0, 1]: the fraction of the dual cone the step pivots across. 0 keeps, 1 forgets, "
                   "and every value in between improves both losses to first order.",
}
