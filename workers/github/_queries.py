"""The GraphQL documents the GitHub client sends; tests/unit/workers/test_github_queries.py
validates each against GitHub's public schema.

A pull request is read with one query; merges pass `expectedHeadOid`, so a head pushed after
our checks refuses the merge instead of merging unreviewed code.
"""

PULL_REQUEST_QUERY = """
query PR($owner: String!, $repo: String!, $number: Int!) {
  repository(owner: $owner, name: $repo) {
    pullRequest(number: $number) {
      id number title url state isDraft
      author { login }
      reviewDecision
      mergeable mergeStateStatus
      headRefOid baseRefName
      mergeCommit { oid }
      mergedAt
      isInMergeQueue isMergeQueueEnabled
      latestReviews(first: 50) { nodes { state author { login } commit { oid } } }
    }
  }
}
"""

MERGE_MUTATION = """
mutation Merge($id: ID!, $head: GitObjectID!) {
  mergePullRequest(input: {pullRequestId: $id, mergeMethod: SQUASH, expectedHeadOid: $head}) {
    pullRequest { state mergeCommit { oid } }
  }
}
"""

ENQUEUE_MUTATION = """
mutation Enqueue($id: ID!, $head: GitObjectID!) {
  enqueuePullRequest(input: {pullRequestId: $id, expectedHeadOid: $head}) {
    mergeQueueEntry { state position }
  }
}
"""


REPOSITORY_QUERY = """
query Repository($owner: String!, $repo: String!) {
  repository(owner: $owner, name: $repo) {
    nameWithOwner
    viewerPermission
    defaultBranchRef { name }
  }
}
"""
