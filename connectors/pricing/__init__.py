"""What a campaign costs: Meta's rate card, the estimate before sending, its report lines."""
