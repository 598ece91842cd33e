"""The VAE, its likelihoods, the objective and everything measured on a trained model."""
