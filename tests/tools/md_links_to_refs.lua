-- SPDX-License-Identifier: GPL-3.0-or-later
-- pandoc filter for tests/tools/docsite.sh: a link to another guide (NAME.md) becomes a reference to its
-- docsite page; a link to any other file of the repository becomes the file name as code, since the
-- docsite has no such page. Web links stay links.
local prefix = "ansible_collections.mailops.tls.docsite."

function Link(link)
  local target = link.target
  if target:match("^%a[%w+.-]*:") or target:match("^#") then
    return nil
  end
  local guide, anchor = target:match("^([%w_-]+)%.md(#?.*)$")
  if guide and anchor == "" then
    local title = pandoc.utils.stringify(link.content)
    return pandoc.RawInline("rst", ":ref:`" .. title .. " <" .. prefix .. guide:gsub("-", "_") .. ">`")
  end
  return pandoc.Code(target)
end
