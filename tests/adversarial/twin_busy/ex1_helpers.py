"""A legitimate helper module next to the student's exercise file."""
import torch


def backward_scan(rewards, not_done, gamma):
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = rewards[t] + gamma * not_done[t] * running
        out[t] = running
    return out
